/**
 * bench:reactions — how fast the fleet heals itself (issue 12, "reactions in seconds"). A real
 * `d8 master` (direct engine, default intervals: sweep 30 s, retry 5 s) on a temp copy of this
 * checkout supervises three slaves it installs itself:
 *
 *   local          venv on this machine (host: local)
 *   setsid-box     a systemd container host whose user may not run units (shape `node`): setsid
 *   systemd-box    a systemd container host with sudo -n (shape `sudo`): system unit, Restart=always
 *
 * Rows (medians over D8_BENCH_RUNS, default 5):
 *   HEAD change -> local slave healthy at the new commit              target <= 10 s
 *   agent SIGKILLed -> noticed by the master (its first failed check)  target <= 1 s
 *     (issue 25: over the agent's channel, not at the next sweep)
 *   agent SIGKILLed -> healthy again through the master (setsid-box)  target <= 10 s
 *     (killed at a random moment of the 30 s sweep cycle, as in life)
 *   agent SIGKILLed -> healthy again without the master (systemd-box) target <= 5 s
 *
 * Needs the hosts tier's images (sh scripts/host-images.sh) and Docker; run it under the heavy-tier
 * lock on a shared machine: `flock /tmp/d8-heavy.lock npm run bench:reactions`.
 */
import { spawn, type ChildProcess } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import YAML from 'yaml';
import { probeHealth } from '../master/agent-client';
import { openStore } from '../master/store';
import { REPO, freePort, randomToken } from '../scripts/test-hosts/hosts';
import {
  makeSshKey, missingHostImages, removeContainerHost, rootExec, startContainerHost, type ContainerHost,
} from '../scripts/test-hosts/containers';
import { benchRepo, fmt, git, median, say, sleep } from './bench-util';

const RUNS = Math.max(1, Number(process.env.D8_BENCH_RUNS ?? 5));

interface Target { name: string; host: string; port: number }

/** Polls the agent (every 100 ms) until `accept` holds; returns when it did, or throws after `timeoutMs`. */
async function until(t: Target, accept: (h: { commit: string; uptime_s: number }) => boolean, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await probeHealth(t.host, t.port, 1000);
    if (r.ok && accept(r.health)) return Date.now();
    if (Date.now() > deadline) throw new Error(`${t.name}: not healthy as expected within ${timeoutMs / 1000} s (last: ${r.ok ? `commit ${r.health.commit}` : r.error})`);
    await sleep(100);
  }
}

/** Pids of agents started under `home` (the local slave's HOME). */
function localAgentPids(home: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes(home) && cmd.includes('agent.js')) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

/** SIGKILLs the agent on a container host (fault injection from outside, as a crash would). */
function killContainerAgent(h: ContainerHost): void {
  const r = rootExec(h, "pkill -9 -f 'agent-[0-9]+/agent[.]js'");
  if (r.code !== 0) throw new Error(`${h.container}: no agent process to kill (${r.out.trim()})`);
}

async function main(): Promise<void> {
  const missing = missingHostImages();
  if (missing) throw new Error(`bench:reactions needs the hosts tier: ${missing}`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rx-bench-'));
  const repo = path.join(root, 'repo');
  const slaveHome = path.join(root, 'slave-home');
  const home = path.join(root, 'd8-home');
  fs.mkdirSync(repo);
  fs.mkdirSync(slaveHome);
  const hosts: ContainerHost[] = [];
  let master: ChildProcess | null = null;
  const masterLog = path.join(root, 'master.log');
  try {
    const key = makeSshKey(root);
    say('starting the container hosts ...');
    const [setsidHost, systemdHost] = await Promise.all([
      startContainerHost('node', { key, sshPort: await freePort(), agentPort: await freePort(), tag: 'rx-bench-setsid' }),
      startContainerHost('sudo', { key, sshPort: await freePort(), agentPort: await freePort(), tag: 'rx-bench-systemd' }),
    ]);
    hosts.push(setsidHost, systemdHost);
    const local: Target = { name: 'local', host: '127.0.0.1', port: await freePort() };
    const setsid: Target = { name: 'setsid-box', host: setsidHost.host, port: setsidHost.agentPort };
    const systemd: Target = { name: 'systemd-box', host: systemdHost.host, port: systemdHost.agentPort };

    // The master's repository: this checkout's agent and core, committed, so HEAD can move.
    const box = (name: string, h: ContainerHost) => ({ name, host: h.host, user: h.user, sshPort: h.sshPort, agentPort: h.agentPort, hostKey: h.hostKey, strategies: ['venv'] });
    benchRepo(REPO, repo, {
      'Pulumi.bench.yaml': YAML.stringify({
        config: {
          'd8:slaves': [{ name: 'local', host: 'local', agentPort: local.port, strategies: ['venv'] }, box('setsid-box', setsidHost), box('systemd-box', systemdHost)],
          'd8:sshKeyPath': key, 'd8:installAttempts': 1, 'd8:installDelaySeconds': 1, 'd8:dashboard': { enabled: false },
        },
      }),
    });

    const out = fs.openSync(masterLog, 'a');
    master = spawn(process.execPath, [path.join(REPO, 'bin', 'd8.js'), 'master', '--stack', 'bench', '--repo', repo, '--engine', 'direct'], {
      env: { PATH: process.env.PATH, HOME: slaveHome, LANG: 'C.UTF-8', D8_HOME: home, D8_AGENT_TOKEN: randomToken(), D8_LOG_LEVEL: 'info' },
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    say(`master started (log: ${masterLog}); waiting for it to install the three slaves ...`);
    let head = git(repo, 'rev-parse', 'HEAD');
    const atHead = (h: { commit: string }): boolean => h.commit === head;
    await Promise.all([local, setsid, systemd].map((t) => until(t, atHead, 300_000)));
    const supervisors = await Promise.all([setsid, systemd].map(async (t) => { const r = await probeHealth(t.host, t.port); return r.ok ? r.health.supervisor : null; }));
    say(`installed: setsid-box supervisor ${supervisors[0]}, systemd-box supervisor ${supervisors[1]}`);

    const headRuns: number[] = [];
    const headRemote: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      fs.writeFileSync(path.join(repo, 'bench.txt'), `${i} ${Date.now()}\n`);
      git(repo, 'add', 'bench.txt');
      const t0 = Date.now();
      git(repo, 'commit', '-q', '-m', `bench ${i}`);
      head = git(repo, 'rev-parse', 'HEAD');
      headRuns.push((await until(local, atHead, 120_000)) - t0);
      const remote = await Promise.all([setsid, systemd].map((t) => until(t, atHead, 180_000)));
      headRemote.push(Math.max(...remote) - t0);
      say(`HEAD change ${i + 1}/${RUNS}: local ${fmt(headRuns[i])}, both remote boxes ${fmt(headRemote[i])}`);
    }

    const setsidRuns: number[] = [];
    const noticedRuns: number[] = [];
    const store = openStore(path.join(home, 'master.db'));
    /** When the master recorded its first failed check of setsid-box after `t0` (it polls the store every 50 ms). */
    const firstFailure = async (t0: number): Promise<number> => {
      for (;;) {
        const f = store.slaves.history('bench', 'setsid-box', 5).find((h) => !h.ok && Date.parse(h.at) >= t0);
        if (f) return Date.parse(f.at);
        if (Date.now() - t0 > 120_000) throw new Error('setsid-box: no failed check within 120 s of the kill');
        await sleep(50);
      }
    };
    for (let i = 0; i < RUNS; i++) {
      await sleep(Math.random() * 30_000); // a random moment of the sweep cycle
      const before = await probeHealth(setsid.host, setsid.port);
      if (!before.ok) throw new Error(`setsid-box is not healthy before run ${i + 1}: ${before.error}`);
      killContainerAgent(setsidHost);
      const t0 = Date.now();
      const noticed = firstFailure(t0);
      setsidRuns.push((await until(setsid, (h) => h.uptime_s * 1000 < Date.now() - t0 + 1000, 180_000)) - t0);
      noticedRuns.push((await noticed) - t0);
      say(`setsid-box SIGKILL ${i + 1}/${RUNS}: first failed check after ${fmt(noticedRuns[i])}, healthy again through the master after ${fmt(setsidRuns[i])}`);
    }
    store.close();

    master.kill('SIGTERM');
    await new Promise((r) => master!.once('exit', r));
    master = null;
    const systemdRuns: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await until(systemd, () => true, 30_000);
      killContainerAgent(systemdHost);
      const t0 = Date.now();
      systemdRuns.push((await until(systemd, (h) => h.uptime_s * 1000 < Date.now() - t0 + 1000, 60_000)) - t0);
      say(`systemd-box SIGKILL ${i + 1}/${RUNS}: healthy again (no master) after ${fmt(systemdRuns[i])}`);
      await sleep(1500);
    }

    const rows: Array<[string, number[], number | null]> = [
      ['HEAD change → local venv slave healthy at the new commit', headRuns, 10_000],
      ['HEAD change → both remote slaves (setsid, systemd) at the new commit', headRemote, null],
      ['agent SIGKILLed → its first failed check (the channel closed; sweep interval 30 s)', noticedRuns, 1000],
      [`agent SIGKILLed → healthy through the master, setsid host (${supervisors[0]})`, setsidRuns, 10_000],
      [`agent SIGKILLed → healthy without the master, systemd host (${supervisors[1]}, Restart=always)`, systemdRuns, 5000],
    ];
    const lines = [
      `bench:reactions — medians over ${RUNS} runs; master with the default intervals (sweep 30 s, retry 5 s, dead after 3 failures)`,
      '',
      '| what | median | min | max | target | |',
      '|---|---|---|---|---|---|',
      ...rows.map(([what, xs, target]) => {
        const m = median(xs);
        return `| ${what} | ${fmt(m)} | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} | ${target === null ? '—' : `≤ ${fmt(target)}`} | ${target === null ? '' : m <= target ? 'ok' : 'MISSED'} |`;
      }),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    if (master) {
      master.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 3000));
      master.kill('SIGKILL');
    }
    for (const p of localAgentPids(slaveHome)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    for (const h of hosts) removeContainerHost(h);
    if (process.env.D8_BENCH_KEEP) say(`kept ${root}`);
    else fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:reactions failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
