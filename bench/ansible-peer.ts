/**
 * The peer of bench:deploy's 4-host push: Debian's ansible-playbook doing what `d8 up --engine direct`
 * does (put the bundle in ~/.d8-agent/bundles/<hash16>, run install.sh with the token on stdin, read
 * its JSON result), in two flavours on the same hosts:
 *   defaults  the playbook as usually written: `copy` of the bundle directory (a module per file)
 *   tuned     what a user who cares about speed sets: pipelining, ControlMaster/ControlPersist (and no
 *             -C on loopback), the bundle as one tar archive copied and unpacked by the install task
 * Both transfer the same bundle bytes and run the same install.sh command line. The agent is checked
 * as a user would check it: over HTTPS, pinned to the fingerprint in the installer's JSON result.
 */
import { execFileSync, spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import type { BundleInfo } from '../agent/bundle/build';
import { installCommand, remoteBundleDir } from '../agent/install/command';
import { InstallResultSchema, parseInstallOutput } from '../core/install-result';
import type { FleetConfig } from '../core/stack-config';
import { probeHealth } from '../master/agent-client';
import type { TestHosts } from '../scripts/test-hosts/hosts';
import { run } from './bench-util';

export type AnsibleFlavour = 'defaults' | 'tuned';

export interface AnsiblePeer {
  flavour: AnsibleFlavour;
  /** One push to every slave; resolves with each slave's certificate fingerprint (from install.sh's result). */
  push(): Promise<Record<string, string>>;
  /** Ends the SSH control masters (they would outlive the bench by ControlPersist). */
  close(): void;
}

/** The name of the task whose per-host `msg` is install.sh's last line (read from the json callback). */
const RESULT_TASK = 'install.sh result';

function inventoryText(th: TestHosts, cfg: FleetConfig): string {
  const hostLines = cfg.slaves.map((s) => {
    const h = Object.values(th.hosts).find((x) => x.host === s.host)!;
    return `${s.name} ansible_host=${s.host} ansible_port=${s.sshPort} ansible_user=${h.user} agent_port=${s.agentPort}`;
  });
  return `[slaves]\n${hostLines.join('\n')}\n\n[slaves:vars]\nansible_ssh_private_key_file=${th.key}\n` +
    'ansible_python_interpreter=/usr/bin/python3\nansible_ssh_common_args=-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null\n';
}

function playbookText(flavour: AnsibleFlavour, bundle: BundleInfo, archive: string, installCmd: string, tokenFile: string): string {
  const rel = remoteBundleDir(bundle.hash);
  const install = (cmd: string) => `    - name: run install.sh (token on stdin)
      shell: ${JSON.stringify(cmd)}
      args: { stdin: "{{ lookup('file', '${tokenFile}') }}" }
      no_log: true
      register: install
    - name: the installer reports success
      assert: { that: ["(install.stdout_lines | last | from_json).ok"] }
    - name: ${RESULT_TASK}
      debug: { msg: "{{ install.stdout_lines | last }}" }
`;
  if (flavour === 'defaults') {
    return `- hosts: slaves
  gather_facts: false
  tasks:
    - name: bundle directory
      file: { path: "~/${rel}", state: directory, mode: "0700" }
    - name: copy the bundle
      copy: { src: "${bundle.dir}/", dest: "~/${rel}/", mode: preserve }
${install(installCmd)}`;
  }
  return `- hosts: slaves
  gather_facts: false
  tasks:
    - name: bundle directory
      file: { path: "~/${rel}", state: directory, mode: "0700" }
    - name: copy the bundle as one archive
      copy: { src: "${archive}", dest: "~/${rel}.tar", mode: "0600" }
${install(`tar -xf ~/${rel}.tar -C ~/${rel} && ${installCmd}`)}`;
}

interface JsonCallbackDoc {
  plays?: Array<{ tasks?: Array<{ task?: { name?: string }; hosts?: Record<string, { msg?: unknown; failed?: boolean }> }> }>;
  stats?: Record<string, { failures?: number; unreachable?: number }>;
}

/** What went wrong, from the json callback's document: each failed host with its task and message. */
function failureText(doc: JsonCallbackDoc | null, raw: string): string {
  if (!doc) return raw.slice(-3000);
  const out: string[] = [];
  for (const t of doc.plays?.flatMap((p) => p.tasks ?? []) ?? []) {
    for (const [host, r] of Object.entries(t.hosts ?? {})) {
      if (r.failed) out.push(`${host}: ${t.task?.name ?? 'a task'}: ${typeof r.msg === 'string' ? r.msg : JSON.stringify(r.msg ?? r)}`.slice(0, 600));
    }
  }
  return out.length ? out.join('\n') : raw.slice(-3000);
}

/** Writes the inventory, playbook and (tuned) the bundle archive into `dir`; `token` goes to a 0600 file. */
export function ansiblePeer(o: { flavour: AnsibleFlavour; dir: string; th: TestHosts; cfg: FleetConfig; bundle: BundleInfo; token: string }): AnsiblePeer {
  const { flavour, dir, th, cfg, bundle } = o;
  fs.mkdirSync(dir, { recursive: true });
  const inventory = path.join(dir, 'inventory.ini');
  fs.writeFileSync(inventory, inventoryText(th, cfg));
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, o.token, { mode: 0o600 });
  const archive = path.join(dir, 'bundle.tar');
  if (flavour === 'tuned') execFileSync('tar', ['-cf', archive, '-C', bundle.dir, ...bundle.files]);
  const cmd = installCommand({
    bundleDir: remoteBundleDir(bundle.hash), strategies: ['venv'], attempts: cfg.installAttempts, delaySeconds: cfg.installDelaySeconds,
    agentPort: 0, healthTimeoutSeconds: 60,
  }).replace('--port 0', '--port {{ agent_port }}');
  const playbook = path.join(dir, 'push.yml');
  fs.writeFileSync(playbook, playbookText(flavour, bundle, archive, cmd, tokenFile));
  const env: NodeJS.ProcessEnv = {
    ...process.env, ANSIBLE_HOST_KEY_CHECKING: 'False', ANSIBLE_LOCAL_TEMP: path.join(dir, 'tmp'), ANSIBLE_NOCOLOR: '1',
    ANSIBLE_STDOUT_CALLBACK: 'json',
    // Where the control sockets live (not a tuning): close() ends the masters behind them.
    ANSIBLE_SSH_CONTROL_PATH_DIR: path.join(dir, 'cp'),
    ...(flavour === 'tuned' ? {
      ANSIBLE_PIPELINING: 'True',
      // Ansible's default ssh_args are "-C -o ControlMaster=auto -o ControlPersist=60s": a master per
      // host kept for the whole bench (not only 60 s), without compression (loopback, CPU-bound).
      ANSIBLE_SSH_ARGS: '-o ControlMaster=auto -o ControlPersist=600s',
    } : {}),
  };
  return {
    flavour,
    async push() {
      const r = await run('ansible-playbook', ['-i', inventory, '-f', '4', playbook], { env });
      let doc: JsonCallbackDoc | null = null;
      try { doc = JSON.parse(r.stdout) as JsonCallbackDoc; } catch { /* reported below with the raw output */ }
      if (r.code !== 0) throw new Error(`ansible-playbook (${flavour}) exited ${r.code}:\n${failureText(doc, r.stdout + r.stderr)}`);
      const results = doc?.plays?.flatMap((p) => p.tasks ?? []).find((t) => t.task?.name === RESULT_TASK)?.hosts ?? {};
      const fingerprints: Record<string, string> = {};
      for (const s of cfg.slaves) {
        // Jinja turns the JSON line into a mapping before the callback sees it (a string if it was not JSON).
        const msg = results[s.name]?.msg;
        if (msg === undefined) throw new Error(`ansible-playbook (${flavour}): no install.sh result for ${s.name} in its output`);
        const result = typeof msg === 'string' ? parseInstallOutput(msg) : InstallResultSchema.parse(msg);
        if (!result.tls_fingerprint) throw new Error(`ansible-playbook (${flavour}): install.sh on ${s.name} reported no tls_fingerprint: ${JSON.stringify(msg).slice(0, 300)}`);
        fingerprints[s.name] = result.tls_fingerprint;
      }
      return fingerprints;
    },
    close() {
      const cp = path.join(dir, 'cp');
      if (!fs.existsSync(cp)) return;
      for (const sock of fs.readdirSync(cp)) {
        spawnSync('ssh', ['-O', 'exit', '-o', `ControlPath=${path.join(cp, sock)}`, 'control-master'], { stdio: 'ignore', timeout: 10_000 });
      }
    },
  };
}

/** The agents answer over HTTPS, pinned to the fingerprints the installs reported, with the bundle's commit. */
export async function checkAgents(what: string, cfg: FleetConfig, bundle: BundleInfo, fingerprints: Record<string, string | null | undefined>): Promise<void> {
  for (const s of cfg.slaves) {
    const fp = fingerprints[s.name];
    if (!fp) throw new Error(`after ${what}: no certificate fingerprint for ${s.name}`);
    const p = await probeHealth(s.agentHost, s.agentPort, 3000, fp);
    if (!p.ok) throw new Error(`after ${what}: ${s.name} does not answer https://${s.agentHost}:${s.agentPort}/api/health (pinned ${fp}): ${p.error}`);
    if (p.health.commit !== bundle.versionInfo.commit) {
      throw new Error(`after ${what}: ${s.name} runs commit ${p.health.commit.slice(0, 7)}, not the bundle's ${bundle.versionInfo.commit.slice(0, 7)}`);
    }
  }
}
