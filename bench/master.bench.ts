/**
 * Master sweep benchmark (`npm run bench:master`).
 *
 * 1,000 lightweight HTTP agents on loopback (a few child processes, each serving many ports, answering
 * /api/health with the protocol's shape: load doubles, not the real agent) are swept by the real
 * Supervisor (axios + axios-retry, breakers, drift, one SQLite transaction per result). Measured:
 * sweep wall time, master CPU per check, master RSS. Then 10 % of the agents turn slow (2 s) or dead:
 * the sweep may grow by at most the per-check deadline. Finally the seed's sequential design (one
 * check after another, a new connection each) is measured on 100 agents and extrapolated.
 * TLS: the same sweep against 1,000 load doubles serving HTTPS (one self-signed certificate, pinned
 * per slave in the store like a deploy records it), with kept-alive connections: wall time, CPU per
 * check, and the ratio to plain HTTP (target: TLS costs < 30 % on the kept-alive sweep).
 *
 * Usage: node dist/bench/master.bench.js [--agents 1000] [--sweeps 5] [--procs 4]
 */
import { fork, execFileSync, type ChildProcess } from 'child_process';
import fs from 'fs';
import http from 'http';
import https from 'https';
import os from 'os';
import path from 'path';
import v8 from 'v8';
import vm from 'vm';
import pino from 'pino';
import { openStore } from '../master/store';
import { Supervisor } from '../master/daemon/supervisor';
import { TuningSchema } from '../master/daemon/tuning';
import { MasterVersion } from '../master/master-version';
import { DeployCoordinator } from '../master/deploy/coordinator';
import type { Deployer } from '../master/deploy/deployer';
import type { FleetConfig, SlaveConfig } from '../core/stack-config';
import { makeSelfSignedCertificate } from '../agent/tls-cert';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};

// ---- the load-double agents (child side) -------------------------------------------------------
type Mode = 'ok' | 'slow' | 'dead';
function runAgentsChild(): void {
  const commit = process.env.BENCH_COMMIT!;
  const servers = new Map<number, { server: http.Server | https.Server; mode: Mode }>();
  const tlsPair = process.env.BENCH_TLS_DIR
    ? { key: fs.readFileSync(path.join(process.env.BENCH_TLS_DIR, 'key.pem')), cert: fs.readFileSync(path.join(process.env.BENCH_TLS_DIR, 'cert.pem')) }
    : null;
  const body = (port: number) => JSON.stringify({
    status: 'ok', branch: 'main', commit, version: '1.0.0', deployed_at: new Date().toISOString(), uptime_s: 1,
    hostname: `bench-${port}`, node_version: process.version, python_version: null,
    execution_methods: { docker: false, venv: false, native: true }, install_strategy: 'native', update_pending: false, update_failed: false,
  });
  const listen = (port: number, tls: boolean): Promise<number> => new Promise((resolve, reject) => {
    const handler = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
      const send = () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(body(port)); };
      if (entry.mode === 'slow') setTimeout(send, 2000); else send();
    };
    const entry = { server: tls && tlsPair ? https.createServer(tlsPair, handler) : http.createServer(handler), mode: 'ok' as Mode };
    entry.server.keepAliveTimeout = 60_000;
    entry.server.once('error', reject);
    entry.server.listen(port, '127.0.0.1', () => {
      const p = (entry.server.address() as { port: number }).port;
      servers.set(p, entry);
      resolve(p);
    });
  });
  process.on('message', async (m: { op: string; count?: number; modes?: Record<number, Mode>; tls?: boolean }) => {
    if (m.op === 'start') {
      const ports: number[] = [];
      for (let i = 0; i < (m.count ?? 0); i++) ports.push(await listen(0, !!m.tls));
      process.send!({ op: 'ports', ports });
    } else if (m.op === 'modes') {
      for (const [p, mode] of Object.entries(m.modes ?? {})) {
        const e = servers.get(Number(p));
        if (!e) continue;
        if (mode === 'dead') { e.server.close(); e.server.closeAllConnections(); }
        e.mode = mode;
      }
      process.send!({ op: 'modes-set' });
    }
  });
}

// ---- the master side ---------------------------------------------------------------------------
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const fmt = (n: number, d = 0): string => n.toFixed(d);

function request(child: ChildProcess, msg: object, reply: string): Promise<{ ports?: number[] }> {
  return new Promise((resolve) => {
    const on = (m: { op: string; ports?: number[] }) => { if (m.op === reply) { child.off('message', on); resolve(m); } };
    child.on('message', on);
    child.send(msg);
  });
}

function tempRepo(root: string): string {
  const repo = path.join(root, 'repo');
  fs.mkdirSync(repo);
  const git = (...a: string[]) => execFileSync('git', a, { cwd: repo, env: { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' } });
  git('init', '-q');
  fs.writeFileSync(path.join(repo, 'package.json'), '{"name":"bench","version":"1.0.0"}\n');
  git('add', '.');
  git('commit', '-q', '-m', 'bench');
  return repo;
}

async function main(): Promise<void> {
  const nAgents = arg('agents', 1000);
  const sweeps = arg('sweeps', 5);
  const procs = arg('procs', 4);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-bench-master-'));
  const children: ChildProcess[] = [];
  try {
    const repo = tempRepo(root);
    const logger = pino({ level: 'silent' });
    const version = new MasterVersion(repo, logger);
    const commit = version.current.commit;
    // Start the load doubles.
    const ports: number[] = [];
    const cert = makeSelfSignedCertificate('d8 bench');
    const tlsDir = path.join(root, 'tls');
    fs.mkdirSync(tlsDir, { mode: 0o700 });
    fs.writeFileSync(path.join(tlsDir, 'key.pem'), cert.keyPem, { mode: 0o600 });
    fs.writeFileSync(path.join(tlsDir, 'cert.pem'), cert.certPem);
    for (let i = 0; i < procs; i++) {
      const c = fork(__filename, ['--child'], { env: { ...process.env, BENCH_COMMIT: commit, BENCH_TLS_DIR: tlsDir }, stdio: 'inherit' });
      children.push(c);
    }
    const per = Math.ceil(nAgents / procs);
    const lists = await Promise.all(children.map((c, i) => request(c, { op: 'start', count: Math.min(per, nAgents - i * per) }, 'ports')));
    lists.forEach((l) => ports.push(...(l.ports ?? [])));
    const owner = new Map<number, ChildProcess>();
    lists.forEach((l, i) => (l.ports ?? []).forEach((p) => owner.set(p, children[i])));

    const slaves: SlaveConfig[] = ports.map((p, i) => ({
      name: `s${String(i).padStart(4, '0')}`, host: 'local', local: true, user: 'bench', sshPort: 22, agentPort: p, agentHost: '127.0.0.1',
      strategies: ['native'], autoUpdate: 'off',
    }));
    const config: FleetConfig = { stack: 'bench', slaves, autoUpdate: 'off', checkIntervalSeconds: 30, telegramChatIds: [], requirements: [], installAttempts: 1, installDelaySeconds: 0 };
    const store = openStore(path.join(root, 'master.db'));
    const noDeploy: Deployer = { engine: 'direct', deploy: async () => { throw new Error('the bench never deploys'); } };
    const tuning = TuningSchema.parse({ concurrency: arg("concurrency", 256), breakerFailures: 1000 });
    const sup = new Supervisor({ config, store, version, deploys: new DeployCoordinator('bench', noDeploy, store.deploys, logger), logger, tuning, repoDir: repo, act: false });

    const measure = async (n: number, s0: Supervisor = sup) => {
      const walls: number[] = []; const cpus: number[] = []; let rss = 0;
      for (let i = 0; i < n; i++) {
        const c0 = process.cpuUsage(); const t0 = process.hrtime.bigint();
        const s = await s0.sweep();
        const wall = Number(process.hrtime.bigint() - t0) / 1e6;
        const c = process.cpuUsage(c0);
        walls.push(wall); cpus.push((c.user + c.system) / 1000 / s.checked);
        rss = Math.max(rss, process.memoryUsage().rss);
      }
      return { wall: median(walls), cpuPerCheck: median(cpus), rss: rss / 1024 / 1024 };
    };
    const rssBase = process.memoryUsage().rss / 1024 / 1024;
    await sup.sweep(); // warm-up: connections, drift cache, SQLite pages
    const healthy = await measure(sweeps);
    const heapAfter = process.memoryUsage().heapUsed / 1024 / 1024;
    const states1 = store.slaves.list('bench').filter((s) => s.state === 'healthy').length;

    // The same sweep over HTTPS: load doubles with one certificate, pinned per slave like a deploy records it.
    const tlsLists = await Promise.all(children.map((c, i) => request(c, { op: 'start', count: Math.min(per, nAgents - i * per), tls: true }, 'ports')));
    const tlsSlaves: SlaveConfig[] = tlsLists.flatMap((l) => l.ports ?? []).map((p, i) => ({ ...slaves[i], name: `t${String(i).padStart(4, '0')}`, agentPort: p }));
    const tlsStore = openStore(path.join(root, 'master-tls.db'));
    for (const s of tlsSlaves) tlsStore.pins.set('bench-tls', s.name, cert.fingerprint);
    const tlsConfig: FleetConfig = { ...config, stack: 'bench-tls', slaves: tlsSlaves };
    const tlsSup = new Supervisor({ config: tlsConfig, store: tlsStore, version, deploys: new DeployCoordinator('bench-tls', noDeploy, tlsStore.deploys, logger), logger, tuning, repoDir: repo, act: false });
    await tlsSup.sweep(); // warm-up: the handshakes
    const tlsHealthy = await measure(sweeps, tlsSup);
    const tlsStates = tlsStore.slaves.list('bench-tls').filter((s) => s.state === 'healthy').length;
    tlsSup.close();
    tlsStore.close();
    const tlsCost = tlsHealthy.wall / healthy.wall - 1;

    // 10 %: half slow (2 s), half dead.
    const modes = new Map<ChildProcess, Record<number, Mode>>();
    ports.forEach((p, i) => {
      if (i % 10 !== 0) return;
      const m = modes.get(owner.get(p)!) ?? {};
      m[p] = i % 20 === 0 ? 'slow' : 'dead';
      modes.set(owner.get(p)!, m);
    });
    await Promise.all([...modes].map(([c, m]) => request(c, { op: 'modes', modes: m }, 'modes-set')));
    const degraded = await measure(Math.max(3, Math.min(sweeps, 3)));
    const healthyAfter = store.slaves.list('bench').filter((s) => s.state === 'healthy').length;

    // The seed's design: one check after another, a new connection each (requests.get), 100 agents.
    const seqN = Math.min(100, ports.length);
    const seqPorts = ports.filter((_p, i) => i % 10 !== 0).slice(0, seqN);
    const seqTimes: number[] = [];
    for (let r = 0; r < 3; r++) {
      const t0 = process.hrtime.bigint();
      for (const p of seqPorts) {
        await new Promise<void>((resolve) => {
          http.get({ host: '127.0.0.1', port: p, path: '/api/health', agent: false }, (res) => {
            let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => { JSON.parse(b); resolve(); });
          }).on('error', () => resolve());
        });
      }
      seqTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const seqPer = median(seqTimes) / seqPorts.length;
    const seqSweep = seqPer * nAgents;
    const seqDegraded = seqPer * nAgents * 0.9 + nAgents * 0.05 * 2000 + nAgents * 0.05 * seqPer; // slow ones wait 2 s each, in a row

    // Evidence for what the RSS above is: a full GC (forced only now, after every measurement, so it
    // perturbs nothing) shows how much of the heap was live and how much garbage V8 had not collected yet.
    const heapBeforeGc = process.memoryUsage().heapUsed / 1024 / 1024;
    v8.setFlagsFromString('--expose-gc');
    (vm.runInNewContext('gc') as () => void)();
    const afterGc = process.memoryUsage();
    const heapLimit = v8.getHeapStatistics().heap_size_limit / 1024 / 1024;

    const grow = degraded.wall - healthy.wall;
    const rows = [
      ['agents', String(nAgents), ''],
      ['sweep wall time, all healthy (median of ' + sweeps + ')', `${fmt(healthy.wall)} ms`, healthy.wall < 1000 ? 'target < 1 s: met' : 'target < 1 s: MISSED'],
      ['master CPU per check', `${fmt(healthy.cpuPerCheck * 1000)} µs`, ''],
      ['master RSS (max)', `${fmt(healthy.rss)} MB`, healthy.rss < 150 ? 'target < 150 MB: met' : 'target < 150 MB: MISSED'],
      ['master RSS before the first sweep (1,000 slaves configured)', `${fmt(rssBase)} MB`, ''],
      ['master V8 heap used after the sweeps', `${fmt(heapAfter)} MB`, ''],
      ['healthy after the sweeps', `${states1}/${nAgents}`, ''],
      ['TLS: sweep wall time, all healthy, kept-alive pinned HTTPS (median of ' + sweeps + ')', `${fmt(tlsHealthy.wall)} ms`, ''],
      ['TLS: master CPU per check', `${fmt(tlsHealthy.cpuPerCheck * 1000)} µs`, `${fmt(tlsHealthy.cpuPerCheck / healthy.cpuPerCheck, 2)}x plain HTTP`],
      ['TLS: healthy after the sweeps', `${tlsStates}/${nAgents}`, ''],
      ['TLS / plain HTTP sweep wall time', `${fmt(tlsHealthy.wall / healthy.wall, 2)}x (${tlsCost >= 0 ? '+' : ''}${fmt(tlsCost * 100, 1)} %)`, tlsCost < 0.3 ? 'target < 30 %: met' : 'target < 30 %: MISSED'],
      ['sweep wall time, 10 % slow (2 s) or dead (median)', `${fmt(degraded.wall)} ms`, ''],
      ['growth vs all healthy', `${fmt(grow)} ms`, grow <= tuning.checkDeadlineMs ? `<= per-check deadline ${tuning.checkDeadlineMs} ms: met` : `> deadline ${tuning.checkDeadlineMs} ms: MISSED`],
      ['master RSS (max, degraded)', `${fmt(degraded.rss)} MB`, ''],
      ['master V8 heap used at the end, before / after a forced full GC', `${fmt(heapBeforeGc)} / ${fmt(afterGc.heapUsed / 1024 / 1024)} MB`, `after: what the master really retains (${nAgents} keep-alive sockets, breakers, JIT code)`],
      ['master RSS after that GC', `${fmt(afterGc.rss / 1024 / 1024)} MB`, `V8 heap limit ${fmt(heapLimit)} MB (from the RAM, or --max-old-space-size): the higher it is, the more garbage V8 lets accumulate before a full GC`],
      ['healthy after the degraded sweeps', `${healthyAfter}/${nAgents}`, 'the 10 % are pending/dead'],
      [`seed design: sequential, measured on ${seqPorts.length}`, `${fmt(seqPer, 2)} ms/check`, ''],
      [`seed design: ${nAgents} sequential (extrapolated)`, `${fmt(seqSweep)} ms`, `ratio ${fmt(seqSweep / healthy.wall, 1)}x slower`],
      [`seed design: ${nAgents} with 10 % slow/dead (extrapolated)`, `${fmt(seqDegraded)} ms`, `ratio ${fmt(seqDegraded / degraded.wall, 1)}x slower`],
    ];
    process.stdout.write(`\n### Master sweep (${os.cpus().length} cores, node ${process.version}, concurrency ${tuning.concurrency}, attempt timeout ${tuning.attemptTimeoutMs} ms, deadline ${tuning.checkDeadlineMs} ms)\n\n`);
    process.stdout.write('| measure | value | note |\n|---|---:|---|\n');
    for (const r of rows) process.stdout.write(`| ${r[0]} | ${r[1]} | ${r[2]} |\n`);
    sup.close();
    store.close();
  } finally {
    for (const c of children) c.kill('SIGTERM');
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv.includes('--child')) runAgentsChild();
else main().catch((err) => { process.stderr.write(`bench failed: ${(err as Error).stack}\n`); process.exit(1); });
