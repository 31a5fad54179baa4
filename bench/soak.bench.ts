/**
 * bench:soak — the ageing benchmark (issue 23, part 2): a year of a master's life in compressed time.
 *
 * A real `d8 master` (direct engine: the real bundle and install.sh) on a temp copy of this checkout
 * installs and supervises 10 real local agents (`host: local`, native strategy, one HOME) plus one
 * slave whose install always fails (its port is held by a process that is not an agent: install.sh
 * refuses it), at a short check interval. While it sweeps, the bench drives, spread over the run:
 *   deploys    commits on the master's HEAD (each updates the 10 agents), SIGKILLed agents (the master
 *              redeploys them), and the failing slave's recoveries (each a failed install, a build log)
 *   requests   over the requests API with an API token: auto-approved PAYMENTs, and CONTENT_APPROVALs
 *              that wait for a person (half of them then approved over the API)
 *   alerts     dead / recovered / failed deploys / pending requests, out through the outbox to a
 *              Telegram Bot API stand-in (tests/support/telegram-standin.ts)
 * and samples every second, from outside: master.db (+ WAL) and D8_HOME/build_logs sizes on disk, each
 * agent's log files under the slave HOME, the master's RSS (/proc) and its sweep time and counts
 * (/metrics). Prints start / middle / end and one year at 30 s, with PASS/FAIL against the targets.
 *
 * Everything is written under one temp directory (D8_HOME, the slaves' HOME), removed at the end
 * (D8_BENCH_KEEP=1 keeps it). Run it at a calm moment: `npm run bench:soak -- --help`.
 */
import { spawn, type ChildProcess } from 'child_process';
import fs from 'fs';
import http from 'http';
import os from 'os';
import path from 'path';
import YAML from 'yaml';
import { REPO, freePort, randomToken } from '../scripts/test-hosts/hosts';
import { TelegramStandIn } from '../tests/support/telegram-standin';
import { stopAgentsUnder } from '../tests/integration/master-support/fleet';
import { benchRepo, git, say, sleep } from './bench-util';
import {
  agentLogBytes, agentPids, diskBytes, httpCall, httpGet, metricSum, parseMetrics, rssBytes, storeBytes, type Sample,
} from './soak-measure';
import { AgentLogTracker, report, type Point } from './soak-report';

const HELP = `bench:soak — a real d8 master with real local agents, aged in compressed time.

Usage: npm run bench:soak -- [options]     (or node dist/bench/soak.bench.js [options])

  --sweeps N       full sweeps to run (default 20000; env D8_SOAK_SWEEPS)
  --interval S     check interval in seconds (default 0.03; env D8_SOAK_INTERVAL)
  --agents N       real local agents (default 10; env D8_SOAK_AGENTS)
  --deploys N      deploys to drive at least (default 100; env D8_SOAK_DEPLOYS): HEAD commits
                   (one deploy per agent each) and agent kills, plus the failing slave's retries
  --kills N        agents SIGKILLed over the run (default 20; env D8_SOAK_KILLS)
  --failing N      \`d8 update broken\` runs over the run, each a failed install (default 15; env D8_SOAK_FAILING)
  --requests N     requests API calls that file a request (default 2000; env D8_SOAK_REQUESTS)
  --warmup S       seconds of sweeps before the run counts (default 45; env D8_SOAK_WARMUP): the
                   garbage of the first install is collected before the start is measured
  --config JSON    more stack config merged into the bench's d8: keys (env D8_SOAK_CONFIG), e.g.
                   '{"retention":{"perSlave":5,"requests":300,"alerts":200}}': a count-based retention
                   shows its plateau only when the run produces more than it keeps (about 9 deploys
                   per agent, 17 for the failing slave, 2,000 requests, ~900 alerts at the defaults;
                   the defaults keep 20, 5,000 and 5,000); an age-based one (days) never prunes here
  --help           this text

One run at the defaults takes about 15 minutes on 2 cores (longer when they are busy). Exit code 1 when a target FAILs.
D8_BENCH_KEEP=1 keeps the temp directory (master log, D8_HOME, the agents' HOME).`;

function opt(name: string, env: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : process.env[env];
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, not "${raw}"`);
  return n;
}

const STACK = 'soak';
const CHAT = 72300;
const MB = 1024 * 1024;

/**
 * A process on the failing slave's port that is not an agent: install.sh probes the port (curl, wget,
 * node or python, never axios like the master's checks), sees it answer and refuses (rc 98). Each
 * probe is one failed install: `probes` counts them.
 */
function occupant(port: number): Promise<{ server: http.Server; probes: () => number }> {
  let probes = 0;
  const server = http.createServer((req, res) => {
    if (!/axios/i.test(req.headers['user-agent'] ?? '')) probes++;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('not a d8 agent\n');
  });
  return new Promise((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', () => resolve({ server, probes: () => probes })); });
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) { process.stdout.write(`${HELP}\n`); return; }
  const SWEEPS = Math.round(opt('sweeps', 'D8_SOAK_SWEEPS', 20_000));
  const INTERVAL = opt('interval', 'D8_SOAK_INTERVAL', 0.03);
  const AGENTS = Math.round(opt('agents', 'D8_SOAK_AGENTS', 10));
  const DEPLOYS = Math.round(opt('deploys', 'D8_SOAK_DEPLOYS', 100));
  const KILLS = Math.round(opt('kills', 'D8_SOAK_KILLS', 20));
  const REQUESTS = Math.round(opt('requests', 'D8_SOAK_REQUESTS', 2000));
  const extraRaw = (() => { const i = process.argv.indexOf('--config'); return i >= 0 ? process.argv[i + 1] : process.env.D8_SOAK_CONFIG; })();
  const extra = extraRaw ? JSON.parse(extraRaw) as Record<string, unknown> : {};
  const WARMUP = opt('warmup', 'D8_SOAK_WARMUP', 45);
  const FAILING = Math.round(opt('failing', 'D8_SOAK_FAILING', 15));
  const COMMITS = Math.max(1, Math.ceil((DEPLOYS - KILLS - FAILING) / AGENTS));
  const t0 = Date.now();

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-bench-soak-'));
  const repo = path.join(root, 'repo');
  const home = path.join(root, 'd8-home');
  const slaveHome = path.join(root, 'slave-home');
  const masterLog = path.join(root, 'master.log');
  for (const d of [repo, home, slaveHome]) fs.mkdirSync(d);
  const standin = new TelegramStandIn();
  let master: ChildProcess | null = null;
  let trap: Awaited<ReturnType<typeof occupant>> | null = null;
  try {
    await standin.start();
    standin.addChat(CHAT);
    const ports: number[] = [];
    for (let i = 0; i < AGENTS; i++) ports.push(await freePort());
    const trapPort = await freePort();
    const dash = await freePort();
    trap = await occupant(trapPort);
    const names = ports.map((_p, i) => `a${String(i + 1).padStart(2, '0')}`);
    benchRepo(REPO, repo, {
      [`Pulumi.${STACK}.yaml`]: YAML.stringify({
        config: {
          'd8:slaves': [
            ...ports.map((p, i) => ({ name: names[i], host: 'local', agentPort: p, strategies: ['native'] })),
            { name: 'broken', host: 'local', agentPort: trapPort, strategies: ['native'] },
          ],
          'd8:autoUpdate': 'auto', 'd8:checkIntervalSeconds': INTERVAL, 'd8:retryIntervalSeconds': INTERVAL,
          'd8:installAttempts': 1, 'd8:installDelaySeconds': 0,
          'd8:dashboard': { enabled: true, port: dash }, 'd8:dailySummary': { enabled: false },
          'd8:approvalRules': [{ type: 'PAYMENT', maxCost: 20, then: 'approve' }, { type: 'CONTENT_APPROVAL', then: 'ask' }],
          'd8:requestsApi': { ratePerMinute: 100_000 },
          ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k.startsWith('d8:') ? k : `d8:${k}`, v])),
        },
      }),
    });
    const env = {
      PATH: process.env.PATH, HOME: slaveHome, LANG: 'C.UTF-8', D8_HOME: home, D8_AGENT_TOKEN: randomToken(), D8_LOG_LEVEL: 'info',
      TELEGRAM_TOKEN: standin.token, TELEGRAM_CHAT_ID: String(CHAT), TELEGRAM_API_ROOT: standin.apiRoot,
      // Compressed time for the failing slave's recoveries too (defaults: 60 s doubling to 30 min).
      D8_MASTER_TUNING: process.env.D8_SOAK_TUNING ?? JSON.stringify({ recoveryBackoffMs: 2000, recoveryBackoffMaxMs: 30_000 }),
    };
    const out = fs.openSync(masterLog, 'a');
    master = spawn(process.execPath, [path.join(REPO, 'bin', 'd8.js'), 'master', '--stack', STACK, '--repo', repo, '--engine', 'direct'], { env, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const m = master;
    const masterGone = (): string | null => (m.exitCode !== null || m.signalCode !== null
      ? `the master exited (${m.exitCode ?? m.signalCode}); last lines of ${masterLog}:\n${fs.readFileSync(masterLog, 'utf8').split('\n').slice(-15).join('\n')}` : null);

    const metrics = async (): Promise<Sample[] | null> => {
      const r = await httpGet(dash, '/metrics');
      return r.status === 200 ? parseMetrics(r.body) : null;
    };
    const healthyAtHead = (s: Sample[]): number => names.filter((n) => metricSum(s, 'd8_slave_state', { slave: n, state: 'healthy' }) === 1).length;
    const waitAllHealthy = async (what: string, timeoutMs: number): Promise<void> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const gone = masterGone();
        if (gone) throw new Error(gone);
        const s = await metrics();
        if (s && healthyAtHead(s) === AGENTS) return;
        if (Date.now() > deadline) throw new Error(`${what}: ${s ? healthyAtHead(s) : 0}/${AGENTS} agents healthy after ${timeoutMs / 1000} s (log: ${masterLog})`);
        await sleep(500);
      }
    };
    say(`bench:soak: master started (log ${masterLog}); installing ${AGENTS} local agents ...`);
    await waitAllHealthy('first install', 600_000);
    say(`installed in ${((Date.now() - t0) / 1000).toFixed(0)} s; sweeping ${SWEEPS} times at ${INTERVAL} s`);

    /** Runs the real CLI with the master's environment. */
    const d8 = (args: string[]): Promise<{ code: number | null; stdout: string }> => new Promise((resolve) => {
      const c = spawn(process.execPath, [path.join(REPO, 'bin', 'd8.js'), ...args], { env, stdio: ['ignore', 'pipe', 'ignore'] });
      let stdout = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.on('close', (code) => resolve({ code, stdout }));
    });
    // An API token for the requests, made with the real CLI.
    const tok = await d8(['tokens', 'create', '--name', 'soak', '--scope', 'requests:write', 'requests:decide', '--json']);
    if (tok.code !== 0) throw new Error('d8 tokens create failed');
    await sleep(WARMUP * 1000);
    const auth = { Authorization: `Bearer ${(JSON.parse(tok.stdout) as { token: string }).token}` };

    // ---- the run ----------------------------------------------------------------------------------
    const first = (await metrics())!;
    const sweeps0 = metricSum(first, 'd8_sweep_duration_seconds_count');
    const points: Point[] = [];
    let last = { count: sweeps0, sum: metricSum(first, 'd8_sweep_duration_seconds_sum') };
    let progress = 0;
    let checks = 0;
    let done = false;
    // Deploys counted from outside (the store's rows are pruned once retention lands): an agent whose
    // process changed between two samples was redeployed; the failing slave's installs are its probes.
    let agentDeploys = 0;
    const lastPids = ports.map((p) => agentPids(slaveHome, p).join(','));
    const logs = new AgentLogTracker(AGENTS);
    logs.observe(0, ports.map((p) => agentLogBytes(slaveHome, p)), lastPids, false);
    const trapBefore = trap.probes();

    const sampler = (async () => {
      while (!done) {
        await sleep(1000);
        const gone = masterGone();
        if (gone) throw new Error(gone);
        const s = await metrics();
        if (!s) continue;
        const count = metricSum(s, 'd8_sweep_duration_seconds_count');
        const sum = metricSum(s, 'd8_sweep_duration_seconds_sum');
        checks = metricSum(s, 'd8_checks_total');
        progress = (count - sweeps0) / SWEEPS;
        points.push({
          p: progress, sweeps: count - sweeps0, sweepMs: count > last.count ? ((sum - last.sum) / (count - last.count)) * 1000 : null,
          rss: rssBytes(m.pid!), db: storeBytes(path.join(home, 'master.db')), buildLogs: diskBytes(path.join(home, 'build_logs')),
          agentLogs: ports.map((p) => agentLogBytes(slaveHome, p)),
        });
        last = { count, sum };
        const pids = ports.map((p, i) => {
          const now = agentPids(slaveHome, p).join(',');
          if (now && now !== lastPids[i]) { lastPids[i] = now; agentDeploys++; }
          return now;
        });
        logs.observe(count - sweeps0, points[points.length - 1].agentLogs, pids, progress >= 0.5);
        if (points.length % 30 === 0) {
          const x = points[points.length - 1];
          say(`${(progress * 100).toFixed(1)} %: ${x.sweeps} sweeps, sweep ${x.sweepMs?.toFixed(1)} ms, RSS ${((x.rss ?? 0) / MB).toFixed(1)} MB, db ${(x.db / MB).toFixed(2)} MB, ` +
            `build logs ${(x.buildLogs / MB).toFixed(2)} MB, agent logs max ${(Math.max(...x.agentLogs) / MB).toFixed(2)} MB, ${standin.sent(CHAT).length} messages`);
        }
        if (progress >= 1) done = true;
      }
    })();

    // Requests: a steady trickle over the whole run; every fifth waits for a person (half of those are approved later).
    let filed = 0;
    const pendingIds: string[] = [];
    const requester = (async () => {
      while (!done && filed < REQUESTS) {
        if (filed >= Math.min(REQUESTS, Math.ceil(progress * REQUESTS * 1.02))) { await sleep(100); continue; }
        const ask = filed % 5 === 4;
        const r = await httpCall(dash, 'POST', '/api/requests', ask
          ? { type: 'CONTENT_APPROVAL', title: `post #${filed}`, description: 'a blog post to publish '.repeat(8), priority: 'normal' }
          : { type: 'PAYMENT', title: `api credits #${filed}`, description: 'monthly credits for the model API', estimated_cost: 5 }, auth);
        if (r.status !== 201) throw new Error(`POST /api/requests answered ${r.status}: ${r.body.slice(0, 200)}`);
        if (ask) pendingIds.push((JSON.parse(r.body) as { id: string }).id);
        if (ask && pendingIds.length % 2 === 0) {
          const id = pendingIds[pendingIds.length - 2];
          const d = await httpCall(dash, 'POST', `/api/requests/${id}/decision`, { decision: 'approve', note: 'ok' }, auth);
          if (d.status !== 200) throw new Error(`deciding ${id} answered ${d.status}: ${d.body.slice(0, 200)}`);
        }
        filed++;
      }
    })();

    // Deploys and alerts, between 10 % and 90 % of the run (the start and end windows stay calm):
    // a HEAD commit every 0.8/COMMITS of the run, a kill every 0.8/KILLS, each waited on.
    const driver = (async () => {
      const events = [
        ...Array.from({ length: COMMITS }, (_v, i) => ({ at: 0.1 + (0.8 * (i + 0.25)) / COMMITS, kind: 'commit' as const, i })),
        ...Array.from({ length: KILLS }, (_v, i) => ({ at: 0.1 + (0.8 * (i + 0.75)) / KILLS, kind: 'kill' as const, i })),
        ...Array.from({ length: FAILING }, (_v, i) => ({ at: 0.1 + (0.8 * (i + 0.5)) / FAILING, kind: 'fail' as const, i })),
      ].sort((a, b) => a.at - b.at);
      for (const ev of events) {
        while (!done && progress < ev.at) await sleep(200);
        if (done) return;
        if (ev.kind === 'commit') {
          fs.writeFileSync(path.join(repo, 'soak.txt'), `release ${ev.i} ${Date.now()}\n`);
          git(repo, 'add', 'soak.txt');
          git(repo, 'commit', '-q', '-m', `soak release ${ev.i}`);
          say(`commit ${ev.i + 1}/${COMMITS} at ${(progress * 100).toFixed(1)} %`);
          await sleep(3000); // the master notices HEAD and starts updating
        } else if (ev.kind === 'fail') {
          // A forced update of the slave that cannot install, through the running master (a control command).
          const { code } = await d8(['update', 'broken', '--stack', STACK, '--repo', repo, '--json']);
          say(`d8 update broken ${ev.i + 1}/${FAILING}: exit ${code} at ${(progress * 100).toFixed(1)} %`);
          continue;
        } else {
          const port = ports[ev.i % AGENTS];
          const pids = agentPids(slaveHome, port);
          for (const p of pids) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
          say(`kill ${ev.i + 1}/${KILLS}: ${names[ev.i % AGENTS]} (${pids.length} process) at ${(progress * 100).toFixed(1)} %`);
          await sleep(1000);
        }
        await waitAllHealthy(`after ${ev.kind} ${ev.i + 1}`, 300_000);
      }
    })();

    await Promise.all([sampler, requester, driver]);
    done = true;
    const final = (await metrics())!;
    const stored = metricSum(final, 'd8_deploys_total');
    const failedDeploys = trap.probes() - trapBefore;
    const deploys = agentDeploys + failedDeploys;
    say(`deploys seen: ${agentDeploys} agent replacements + ${failedDeploys} failed installs; the store holds ${stored} deploy rows`);
    const wallS = (Date.now() - t0) / 1000;
    const messages = standin.sent(CHAT).length;
    const r = report(points, logs, {
      sweeps: points[points.length - 1].sweeps, checks, deploys, failedDeploys, requests: filed, messages,
    }, { agents: AGENTS, intervalS: INTERVAL, wallS, extraConfig: extraRaw });
    process.stdout.write(r.text);
    process.stdout.write(`\nD8_HOME total ${(diskBytes(home) / MB).toFixed(1)} MB, slave HOME ~/.d8-agent ${(diskBytes(path.join(slaveHome, '.d8-agent')) / MB).toFixed(1)} MB, master log ${(diskBytes(masterLog) / MB).toFixed(1)} MB\n`);
    if (r.failed) process.exitCode = 1;
  } finally {
    if (master && master.exitCode === null && master.signalCode === null) {
      const mm = master;
      const exited = new Promise((res) => mm.once('exit', res));
      mm.kill('SIGTERM');
      await Promise.race([exited, sleep(30_000)]);
      if (mm.exitCode === null && mm.signalCode === null) mm.kill('SIGKILL');
    }
    await stopAgentsUnder(slaveHome);
    trap?.server.close();
    await standin.stop();
    if (process.env.D8_BENCH_KEEP) say(`kept ${root}`);
    else fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:soak failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
