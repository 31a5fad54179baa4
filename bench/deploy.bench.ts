/**
 * bench:deploy — how long putting the agent on a host takes, on the SSH test hosts
 * (scripts/test-hosts.sh; run as root after scripts/ci-setup-system.sh).
 *
 *   fresh deploy per strategy   nothing on the host (uninstalled), strategies = [that one]
 *   redeploy                    forced, over a running venv agent, bundle already on the host
 *   1 host vs 4 in parallel     forced venv redeploys
 *   ours vs Ansible             the same push (copy the bundle, run install.sh) to the same 4 hosts
 *                               with Debian's ansible-playbook (forks = 4), in the same run
 *   Node.js runtime             fresh install on a no-node host incl. the runtime push, redeploy with
 *                               the runtime there, the push alone in MB/s (bench/runtime-rows.ts)
 *
 * Prints a markdown table of medians with targets. Env: D8_BENCH_RUNS (default 3),
 * D8_BENCH_ONLY=runtime (only the runtime rows).
 */
import { spawn } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { buildBundle, type BundleInfo } from '../agent/bundle/build';
import { installCommand, remoteBundleDir } from '../agent/install/command';
import type { Strategy } from '../core/protocol';
import type { FleetConfig, SlaveConfig } from '../core/stack-config';
import { DirectDeployer } from '../master/deploy/direct';
import type { DeployResult } from '../master/deploy/deployer';
import { probeHealth } from '../master/agent-client';
import {
  fleetConfig, freePort, REPO, uninstallAsUser, upTestHosts, type Shape, type TestHosts,
} from '../scripts/test-hosts/hosts';
import { runtimeRows } from './runtime-rows';

const RUNS = Math.max(1, Number(process.env.D8_BENCH_RUNS ?? 3));

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const say = (s: string): void => { process.stderr.write(`${s}\n`); };

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function mustOk(r: DeployResult, strategy: Strategy): void {
  if (!r.ok || r.strategy !== strategy) throw new Error(`${r.slave}: expected ${strategy}, got ${r.strategy}: ${r.error}`);
}

interface Row { what: string; runs: number[]; target: string; pass: boolean | null; note?: string }

function ansibleFiles(dir: string, th: TestHosts, cfg: FleetConfig, slaves: SlaveConfig[], bundle: BundleInfo, token: string): { inventory: string; playbook: string } {
  const inventory = path.join(dir, 'inventory.ini');
  const hostLines = slaves.map((s) => {
    const h = Object.values(th.hosts).find((x) => x.host === s.host)!;
    return `${s.name} ansible_host=${s.host} ansible_port=${s.sshPort} ansible_user=${h.user} agent_port=${s.agentPort}`;
  });
  fs.writeFileSync(inventory, `[slaves]\n${hostLines.join('\n')}\n\n[slaves:vars]\nansible_ssh_private_key_file=${th.key}\n` +
    'ansible_python_interpreter=/usr/bin/python3\nansible_ssh_common_args=-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null\n');
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, token, { mode: 0o600 });
  const rel = remoteBundleDir(bundle.hash);
  const cmd = installCommand({
    bundleDir: rel, strategies: ['venv'], attempts: cfg.installAttempts, delaySeconds: cfg.installDelaySeconds,
    agentPort: 0, healthTimeoutSeconds: 60,
  }).replace('--port 0', '--port {{ agent_port }}');
  const playbook = path.join(dir, 'push.yml');
  // The way it is usually done: copy the bundle, run the installer, check the JSON it prints.
  fs.writeFileSync(playbook, `- hosts: slaves
  gather_facts: false
  tasks:
    - name: bundle directory
      file: { path: "~/${rel}", state: directory, mode: "0700" }
    - name: copy the bundle
      copy: { src: "${bundle.dir}/", dest: "~/${rel}/", mode: preserve }
    - name: run install.sh (token on stdin)
      shell: ${JSON.stringify(cmd)}
      args: { stdin: "{{ lookup('file', '${tokenFile}') }}" }
      no_log: true
      register: install
    - name: the installer reports success
      assert: { that: ["(install.stdout_lines | last | from_json).ok"] }
`);
  return { inventory, playbook };
}

function runAnsible(inventory: string, playbook: string, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ansible-playbook', ['-i', inventory, '-f', '4', playbook], {
      env: { ...process.env, ANSIBLE_HOST_KEY_CHECKING: 'False', ANSIBLE_LOCAL_TEMP: path.join(dir, 'ansible-tmp'), ANSIBLE_NOCOLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ansible-playbook exited ${code}:\n${out.slice(-3000)}`))));
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:deploy needs root (the test hosts are unix users with their own sshd): run scripts/ci-setup-system.sh, then as root');
  say('bench:deploy: starting the test hosts');
  const th = upTestHosts();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-bench-deploy-'));
  const env = { ...process.env, D8_HOME: path.join(work, 'home') };
  const rows: Row[] = [];
  const used: Shape[] = ['docker', 'venv', 'native', 'venv2', 'venv3'];
  try {
    const tBundle = await timed(async () => { await buildBundle({ outRoot: path.join(work, 'b0') }); });
    const bundle = await buildBundle({ outRoot: path.join(work, 'bundles') });
    say(`bundle ${bundle.hash.slice(0, 16)} built in ${fmt(tBundle)}`);

    // D8_BENCH_ONLY=runtime skips these rows.
    if (process.env.D8_BENCH_ONLY !== 'runtime') {
      const ports: Record<string, number> = {};
      for (const s of used) ports[s] = await freePort();
      const spec = (name: string, shape: Shape, strategies: Strategy[]) => ({ name, host: th.hosts[shape], agentPort: ports[shape], strategies });
      const cfgFor = (specs: ReturnType<typeof spec>[]): FleetConfig => fleetConfig(th, specs);
      const deployerFor = (cfg: FleetConfig): DirectDeployer => new DirectDeployer({ config: cfg, bundle, env, healthTimeoutSeconds: 60 });

      // Fresh deploy per strategy.
      for (const [strategy, shape] of [['docker', 'docker'], ['venv', 'venv'], ['native', 'native']] as const) {
        const cfg = cfgFor([spec(strategy, shape, [strategy])]);
        const runs: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          uninstallAsUser(REPO, th.hosts[shape].user);
          const d = deployerFor(cfg);
          let r!: DeployResult;
          runs.push(await timed(async () => { r = await d.deploy(cfg.slaves[0], { reason: 'bench', force: true }); }));
          mustOk(r, strategy);
          say(`fresh ${strategy} #${i + 1}: ${fmt(runs[runs.length - 1])}`);
        }
        const target = strategy === 'venv' ? 15000 : null;
        rows.push({ what: `fresh deploy, ${strategy}`, runs, target: target ? `< ${fmt(target)}` : '-', pass: target ? median(runs) < target : null });
      }

      // Redeploy over the running venv agent.
      {
        const cfg = cfgFor([spec('venv', 'venv', ['venv'])]);
        const d = deployerFor(cfg);
        const runs: number[] = [];
        for (let i = 0; i < RUNS + 2; i++) {
          let r!: DeployResult;
          runs.push(await timed(async () => { r = await d.deploy(cfg.slaves[0], { reason: 'bench', force: true }); }));
          mustOk(r, 'venv');
        }
        rows.push({ what: 'redeploy (forced, venv, agent running)', runs, target: `< ${fmt(8000)}`, pass: median(runs) < 8000 });
      }

      // One host against four in parallel (forced venv redeploys; the docker host's user can run venv too).
      const four = cfgFor([spec('venv', 'venv', ['venv']), spec('venv2', 'venv2', ['venv']), spec('venv3', 'venv3', ['venv']), spec('docker', 'docker', ['venv'])]);
      uninstallAsUser(REPO, th.hosts.docker.user);
      const dFour = deployerFor(four);
      for (const r of await Promise.all(four.slaves.map((s) => dFour.deploy(s, { reason: 'bench warm-up', force: true })))) mustOk(r, 'venv');
      const one: number[] = [];
      const par: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        let r!: DeployResult;
        one.push(await timed(async () => { r = await dFour.deploy(four.slaves[0], { reason: 'bench', force: true }); }));
        mustOk(r, 'venv');
        let rs: DeployResult[] = [];
        par.push(await timed(async () => { rs = await Promise.all(four.slaves.map((s) => dFour.deploy(s, { reason: 'bench', force: true }))); }));
        rs.forEach((x) => mustOk(x, 'venv'));
      }
      rows.push({ what: '1 host (forced venv redeploy)', runs: one, target: '-', pass: null });
      const ratio = median(par) / median(one);
      rows.push({ what: '4 hosts in parallel', runs: par, target: '< 1.5 x 1 host', pass: ratio < 1.5, note: `${ratio.toFixed(2)} x 1 host` });

      // The same push with Ansible, same hosts, same run.
      const token = four.agentToken!;
      const { inventory, playbook } = ansibleFiles(work, th, four, four.slaves, bundle, token);
      const ours: number[] = [];
      const ansible: number[] = [];
      await runAnsible(inventory, playbook, work); // warm-up: ansible's first contact (facts cache, control sockets)
      for (let i = 0; i < RUNS; i++) {
        ansible.push(await timed(() => runAnsible(inventory, playbook, work)));
        for (const s of four.slaves) {
          const p = await probeHealth(s.agentHost, s.agentPort);
          if (!p.ok || p.health.commit !== bundle.versionInfo.commit) throw new Error(`after ansible: ${s.name} is not up with the bundle's commit`);
        }
        let rs: DeployResult[] = [];
        ours.push(await timed(async () => { rs = await Promise.all(four.slaves.map((s) => dFour.deploy(s, { reason: 'bench', force: true }))); }));
        rs.forEach((x) => mustOk(x, 'venv'));
        say(`push #${i + 1}: ours ${fmt(ours[i])}, ansible ${fmt(ansible[i])}`);
      }
      const vs = median(ours) / median(ansible);
      rows.push({ what: 'Ansible playbook, same push to 4 hosts', runs: ansible, target: '-', pass: null });
      rows.push({ what: 'ours, same push to 4 hosts', runs: ours, target: '< Ansible', pass: vs < 1, note: `ours / Ansible = ${vs.toFixed(2)}` });

    }

    rows.push(...await runtimeRows({ th, bundle, env, runs: RUNS, timed, say }));

    const lines = [
      `bench:deploy — ${RUNS} run(s) per row (redeploy: ${RUNS + 2}), ${os.cpus().length} CPUs, bundle build ${fmt(tBundle)} (not included below)`,
      '',
      '| measurement | median | min | max | target | result |',
      '|---|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.what} | ${fmt(median(r.runs))} | ${fmt(Math.min(...r.runs))} | ${fmt(Math.max(...r.runs))} | ${r.target} | ` +
        `${r.pass === null ? '' : r.pass ? 'PASS' : 'FAIL'}${r.note ? ` (${r.note})` : ''} |`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
    if (rows.some((r) => r.pass === false)) process.exitCode = 1;
  } finally {
    for (const s of used) uninstallAsUser(REPO, th.hosts[s].user);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:deploy: ${(err as Error).message}\n`);
  process.exit(1);
});
