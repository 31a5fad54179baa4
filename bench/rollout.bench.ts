/**
 * bench:rollout — what a safe rollout (issue 14) costs and how fast it undoes a bad release. A real
 * `d8 master` (direct engine, real install.sh over SSH) on a temp copy of this checkout supervises
 * four SSH test hosts (scripts/test-hosts.sh: venv, venv2, venv3 and the docker host's user, all with
 * the venv strategy) under `d8:rollout { canary: 1, batchSize: 2, healthyForSeconds: 5, maxFailures: 1 }`.
 *
 * Rows (medians over D8_BENCH_RUNS, default 3):
 *   good release: HEAD change → all 4 agents at the new commit (canary, then 2, then 1, gated)
 *   bad release (its agent exits at start-up): the canary's failed deploy → the canary answering
 *     again at its previous release, rolled back                                     target < 15 s
 *   bad release: HEAD change → the canary rolled back and answering (whole reaction)
 *   peer: the same four updates without d8:rollout (the per-slave policy, all at once), same hosts
 *
 * The sweep interval is the product's default (30 s) unless D8_BENCH_INTERVAL=<seconds> is set.
 * Needs root and the SSH test hosts (sh scripts/ci-setup-system.sh); run it under the heavy-tier lock
 * on a shared machine: `flock /tmp/d8-heavy.lock npm run bench:rollout`. D8_BENCH_HOSTS=local runs
 * the four slaves as `host: local` instead (native strategy, one HOME: their installs take turns on
 * the per-user installer lock, so a batch of two installs one after the other), without SSH or root.
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import YAML from 'yaml';
import { probeHealth } from '../master/agent-client';
import { openStore } from '../master/store';
import { REPO, freePort, randomToken, uninstallAsUser, upTestHosts, type Shape } from '../scripts/test-hosts/hosts';
import { benchRepo, fmt, git, median, say, sleep } from './bench-util';

const RUNS = Math.max(1, Number(process.env.D8_BENCH_RUNS ?? 3));
const INTERVAL = process.env.D8_BENCH_INTERVAL ? Number(process.env.D8_BENCH_INTERVAL) : null;
const HEALTHY_FOR = 5;
const ROLLBACK_TARGET_MS = 15_000;
const SHAPES: Shape[] = ['venv', 'venv2', 'venv3', 'docker'];
const LOCAL = process.env.D8_BENCH_HOSTS === 'local';


/** A slave: an SSH test host (its user and sshd), or `host: local` (agent on 127.0.0.1). */
interface Target { name: string; host: string; port: number; ssh: { user: string; sshPort: number; hostKey: string } | null }

async function commitOf(t: Target): Promise<string | null> {
  const r = await probeHealth(t.host, t.port, 1000);
  return r.ok ? r.health.commit : null;
}

/** Polls (every 100 ms) until `accept(commit)` holds; returns when it did. */
async function until(t: Target, accept: (commit: string | null) => boolean, timeoutMs: number, what: string): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await commitOf(t);
    if (accept(c)) return Date.now();
    if (Date.now() > deadline) throw new Error(`${t.name}: ${what} did not happen within ${timeoutMs / 1000} s (last: ${c ?? 'not answering'})`);
    await sleep(100);
  }
}

async function main(): Promise<void> {
  if (!LOCAL && process.getuid?.() !== 0) throw new Error('bench:rollout needs root (the test hosts are unix users with their own sshd): run scripts/ci-setup-system.sh, then as root; or D8_BENCH_HOSTS=local');
  const th = LOCAL ? null : upTestHosts();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-bench-rollout-'));
  const slaveHome = path.join(root, 'slave-home');
  fs.mkdirSync(slaveHome);
  const repo = path.join(root, 'repo');
  const home = path.join(root, 'd8-home');
  const masterLog = path.join(root, 'master.log');
  fs.mkdirSync(repo);
  let master: ChildProcess | null = null;
  const targets: Target[] = [];
  for (const [i, s] of SHAPES.entries()) {
    const h = th?.hosts[s];
    targets.push({ name: `s${i + 1}`, host: h ? h.host : '127.0.0.1', port: await freePort(), ssh: h ? { user: h.user, sshPort: h.port, hostKey: h.hostKey } : null });
  }
  const stackFile = (rollout: boolean): string => YAML.stringify({
    config: {
      'd8:slaves': targets.map((t) => (t.ssh
        ? { name: t.name, host: t.host, user: t.ssh.user, sshPort: t.ssh.sshPort, agentPort: t.port, hostKey: t.ssh.hostKey, strategies: ['venv'] }
        : { name: t.name, host: 'local', agentPort: t.port, strategies: ['native'] })),
      ...(th ? { 'd8:sshKeyPath': th.key } : {}), 'd8:installAttempts': 1, 'd8:installDelaySeconds': 0,
      'd8:dashboard': { enabled: false }, 'd8:dailySummary': { enabled: false },
      ...(INTERVAL ? { 'd8:checkIntervalSeconds': INTERVAL } : {}),
      ...(rollout ? { 'd8:rollout': { canary: 1, batchSize: 2, healthyForSeconds: HEALTHY_FOR, maxFailures: 1 } } : {}),
    },
  });
  const startMaster = (): void => {
    const out = fs.openSync(masterLog, 'a');
    master = spawn(process.execPath, [path.join(REPO, 'bin', 'd8.js'), 'master', '--stack', 'bench', '--repo', repo, '--engine', 'direct'], {
      env: { PATH: process.env.PATH, HOME: slaveHome, LANG: 'C.UTF-8', D8_HOME: home, D8_AGENT_TOKEN: token, D8_LOG_LEVEL: 'info' },
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
  };
  const stopMaster = async (): Promise<void> => {
    const m = master as ChildProcess | null;
    if (!m || m.exitCode !== null) return;
    const exited = new Promise((r) => m.once('exit', r));
    m.kill('SIGTERM');
    await exited;
    master = null;
  };
  const token = randomToken();
  try {
    benchRepo(REPO, repo, { 'Pulumi.bench.yaml': stackFile(true) });
    const mainTs = path.join(repo, 'agent', 'main.ts');
    const goodMain = fs.readFileSync(mainTs, 'utf8');
    let head = git(repo, 'rev-parse', 'HEAD');
    const commit = (msg: string, bad = false): string => {
      fs.writeFileSync(mainTs, bad ? `console.error('this release is broken'); process.exit(3);\n${goodMain}` : goodMain);
      fs.writeFileSync(path.join(repo, 'agent', 'release-note.txt'), `${msg} ${Date.now()}\n`);
      git(repo, 'add', '-A');
      git(repo, 'commit', '-q', '-m', msg);
      return git(repo, 'rev-parse', 'HEAD');
    };

    startMaster();
    say(`master started (log: ${masterLog}); installing the four hosts ...`);
    await Promise.all(targets.map((t) => until(t, (c) => c === head, 400_000, `the first install of ${head.slice(0, 7)}`)));
    const store = openStore(path.join(home, 'master.db'));
    // The first release must be known good everywhere before a rollout can roll anyone back to it.
    const deadline = Date.now() + 120_000;
    while (!targets.every((t) => store.releases.slave('bench', t.name)?.good_commit === head)) {
      if (Date.now() > deadline) throw new Error('the first release was not recorded as good on every slave');
      await sleep(200);
    }

    const allUpdated: number[] = [];
    const rollback: number[] = [];
    const reaction: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = Date.now();
      head = commit(`good ${i}`);
      const done = await Promise.all(targets.map((t) => until(t, (c) => c === head, 600_000, `the update to ${head.slice(0, 7)}`)));
      allUpdated.push(Math.max(...done) - t0);
      const good = head;
      // Known good on all four (the rollout passed), so the bad canary has this release to go back to.
      while (!targets.every((t) => store.releases.slave('bench', t.name)?.good_commit === good) || store.rollouts.forCommit('bench', good)?.status !== 'done') await sleep(200);

      const b0 = Date.now();
      head = commit(`bad ${i}`, true);
      const canary = targets[0];
      await until(canary, (c) => c !== good, 300_000, 'the bad install replacing the canary');
      const back = await until(canary, (c) => c === good, 300_000, `the canary back at ${good.slice(0, 7)}`);
      const failed = store.deploys.list('bench', canary.name, 50).find((d) => d.reason === `rollout ${head.slice(0, 7)}` && d.status === 'failed');
      if (!failed?.finished_at) throw new Error(`no failed deploy of ${head.slice(0, 7)} on ${canary.name} was recorded`);
      rollback.push(back - Date.parse(failed.finished_at));
      reaction.push(back - b0);
      for (const t of targets.slice(1)) if ((await commitOf(t)) !== good) throw new Error(`${t.name} does not run ${good.slice(0, 7)} after the bad rollout halted`);
      say(`run ${i + 1}/${RUNS}: all 4 updated in ${fmt(allUpdated[i])}; canary failure → rolled back and answering in ${fmt(rollback[i])} (bad commit → rolled back ${fmt(reaction[i])})`);
      while (store.rollouts.forCommit('bench', head)?.status !== 'halted') await sleep(200);
    }
    store.close();

    // The peer: the same updates without a rollout policy (every behind slave updated at once).
    await stopMaster();
    fs.writeFileSync(path.join(repo, 'Pulumi.bench.yaml'), stackFile(false));
    head = commit('peer baseline');
    startMaster();
    await Promise.all(targets.map((t) => until(t, (c) => c === head, 400_000, `the baseline ${head.slice(0, 7)}`)));
    const peer: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = Date.now();
      head = commit(`peer ${i}`);
      const done = await Promise.all(targets.map((t) => until(t, (c) => c === head, 600_000, `the update to ${head.slice(0, 7)}`)));
      peer.push(Math.max(...done) - t0);
      say(`peer run ${i + 1}/${RUNS}: all 4 updated at once in ${fmt(peer[i])}`);
    }

    const rows: Array<[string, number[], string, string]> = [
      ['good release: HEAD change → all 4 at the new commit (canary, 2, 1; gated)', allUpdated, '—', `${(median(allUpdated) / median(peer)).toFixed(1)} x peer`],
      ['peer: the same 4 updates without d8:rollout (all at once)', peer, '—', ''],
      ['bad release: canary\'s failed deploy → rolled back and answering', rollback, `< ${fmt(ROLLBACK_TARGET_MS)}`,
        `${(median(rollback) / ROLLBACK_TARGET_MS).toFixed(2)} x target: ${median(rollback) < ROLLBACK_TARGET_MS ? 'ok' : 'MISSED'}`],
      ['bad release: HEAD change → canary rolled back and answering', reaction, '—', ''],
    ];
    const lines = [
      `bench:rollout — medians over ${RUNS} run(s); ${LOCAL ? '4 host: local slaves sharing one HOME (native strategy)' : '4 SSH hosts (venv strategy)'}, healthyForSeconds ${HEALTHY_FOR}, sweep interval ${INTERVAL ?? 30} s${INTERVAL ? '' : ' (default)'}, ${os.cpus().length} CPUs`,
      '',
      '| what | median | min | max | target | |',
      '|---|---|---|---|---|---|',
      ...rows.map(([what, xs, target, note]) => `| ${what} | ${fmt(median(xs))} | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} | ${target} | ${note} |`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (median(rollback) >= ROLLBACK_TARGET_MS) process.exitCode = 1;
  } finally {
    await stopMaster().catch(() => undefined);
    for (const t of targets) {
      if (t.ssh) uninstallAsUser(REPO, t.ssh.user, t.port);
      else spawnSync('sh', [path.join(REPO, 'agent', 'install', 'uninstall.sh'), '--port', String(t.port)], { env: { PATH: process.env.PATH, HOME: slaveHome }, stdio: 'ignore', timeout: 60_000 });
    }
    if (process.env.D8_BENCH_KEEP) say(`kept ${root}`);
    else fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:rollout failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
