/**
 * Agent benchmark (`npm run bench:agent`): spawns a real agent on a free loopback port and prints a
 * markdown table:
 *  - GET /api/health throughput and p50/p99 latency, from a load generator in a worker thread
 *    (node http, keep-alive, N concurrent connections), so it shares no event loop with the agent;
 *  - POST /api/execute of `true` (native) against spawning `sh -c true` directly: medians, the
 *    overhead and the ratio;
 *  - the agent's idle RSS (VmRSS from /proc);
 *  - the same health load against a second agent serving HTTPS (its own key pair, D8_TLS_DIR), with
 *    keep-alive: the TLS rows and their ratio to plain HTTP.
 *
 * Options: --duration <s> (health load, default 5), --connections <n> (default 32),
 *          --runs <n> (execute samples, default 200), --strict (exit 1 when a target is missed).
 */
import { spawn } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import http from 'http';
import https from 'https';
import os from 'os';
import path from 'path';
import { Worker, isMainThread, parentPort, workerData } from 'worker_threads';

interface LoadParams {
  port: number;
  connections: number;
  warmupMs: number;
  durationMs: number;
  tls: boolean;
}

interface LoadResult {
  requests: number;
  /** Requests answered during the warm-up (they count for the agent's CPU time per request). */
  warmupRequests: number;
  errors: number;
  seconds: number;
  latenciesMs: number[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
const median = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 50);
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Worker side: hammer /api/health on `connections` keep-alive connections. */
async function loadGenerator(p: LoadParams): Promise<LoadResult> {
  const agent = p.tls ? new https.Agent({ keepAlive: true, maxSockets: p.connections, rejectUnauthorized: false }) : new http.Agent({ keepAlive: true, maxSockets: p.connections });
  const get = (): Promise<boolean> => new Promise((resolve) => {
    const req = (p.tls ? https : http).get({ host: '127.0.0.1', port: p.port, path: '/api/health', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('error', () => resolve(false));
  });
  const latencies: number[] = [];
  let errors = 0;
  let warmupRequests = 0;
  let measuring = false;
  const start = nowMs();
  const measureFrom = start + p.warmupMs;
  const end = measureFrom + p.durationMs;
  const loop = async (): Promise<void> => {
    for (;;) {
      const t0 = nowMs();
      if (t0 >= end) return;
      const ok = await get();
      const t1 = nowMs();
      if (t0 >= measureFrom) {
        measuring = true;
        if (ok) latencies.push(t1 - t0);
        else errors++;
      } else if (ok) warmupRequests++;
    }
  };
  await Promise.all(Array.from({ length: p.connections }, loop));
  agent.destroy();
  return { requests: latencies.length, warmupRequests, errors, seconds: measuring ? p.durationMs / 1000 : 0, latenciesMs: latencies };
}

if (!isMainThread) {
  void loadGenerator(workerData as LoadParams).then((r) => parentPort!.postMessage(r));
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i !== -1 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : def;
}

/** CPU time (user + system) the process has used, in ms. */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function waitForListening(logFile: string, pid: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const text = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
    for (const line of text.split('\n')) {
      if (!line.includes('"listening"')) continue;
      const l = JSON.parse(line) as { pid?: number; port?: number; msg?: string };
      if (l.msg === 'listening' && l.pid === pid && l.port) return l.port;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the agent did not start within ${timeoutMs} ms; log:\n${fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-2000) : ''}`);
}

function post(agent: http.Agent, port: number, token: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: '/api/execute', method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Authorization: `Bearer ${token}` },
    }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function bareSpawn(): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('sh', ['-c', 'true'], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout.resume();
    c.stderr.resume();
    c.once('error', reject);
    c.once('close', () => resolve());
  });
}

async function main(): Promise<void> {
  const durationS = arg('duration', 5);
  const connections = arg('connections', 32);
  const runs = arg('runs', 200);
  const entry = path.join(__dirname, '..', 'agent', 'main.js');
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: run \`npx tsc -p tsconfig.json\` first`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-agent-bench-'));
  const token = crypto.randomBytes(24).toString('base64url');
  const versionFile = path.join(dir, 'version_info.json');
  fs.writeFileSync(versionFile, JSON.stringify({
    branch: 'bench', commit: crypto.randomBytes(20).toString('hex'), version: '0.0.0', deployed_at: new Date().toISOString(), dirty: false,
  }));
  const logFds: number[] = [];
  const pids: number[] = [];
  const startAgent = async (name: string, extra: NodeJS.ProcessEnv): Promise<{ pid: number; port: number }> => {
    const logFile = path.join(dir, `${name}.log`);
    const logFd = fs.openSync(logFile, 'a');
    logFds.push(logFd);
    const env: NodeJS.ProcessEnv = { ...process.env, D8_AGENT_TOKEN: token, D8_AGENT_PORT: '0', D8_AGENT_HOST: '127.0.0.1', D8_VERSION_FILE: versionFile, ...extra };
    delete env.D8_AGENT_TOKEN_FILE;
    if (!extra.D8_TLS_DIR) delete env.D8_TLS_DIR;
    const child = spawn(process.execPath, [entry], { env, stdio: ['ignore', logFd, logFd] });
    pids.push(child.pid as number);
    return { pid: child.pid as number, port: await waitForListening(logFile, child.pid as number, 30_000) };
  };
  const cleanup = (): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    for (const fd of logFds) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const healthLoad = async (pid: number, port: number, tls: boolean): Promise<{ load: LoadResult; lat: number[]; rps: number; cpuPerReqUs: number }> => {
    process.stderr.write(`bench: /api/health load over ${tls ? 'HTTPS' : 'HTTP'}, ${connections} connections, ${durationS} s (+1 s warm-up)…\n`);
    const cpuBefore = cpuMs(pid);
    const load = await new Promise<LoadResult>((resolve, reject) => {
      const w = new Worker(__filename, { workerData: { port, connections, warmupMs: 1000, durationMs: durationS * 1000, tls } satisfies LoadParams });
      w.once('message', (m: LoadResult) => {
        resolve(m);
        void w.terminate();
      });
      w.once('error', reject);
    });
    return {
      load, lat: [...load.latenciesMs].sort((a, b) => a - b), rps: load.requests / load.seconds,
      cpuPerReqUs: ((cpuMs(pid) - cpuBefore) * 1000) / (load.requests + load.warmupRequests),
    };
  };
  try {
    process.stderr.write('bench: starting the agent…\n');
    const { pid, port } = await startAgent('agent', {});
    await new Promise((r) => setTimeout(r, 2000));
    const idleRss = rssMb(pid);

    const { load, lat, rps, cpuPerReqUs } = await healthLoad(pid, port, false);
    const loadavg = os.loadavg()[0];
    const loadedRss = rssMb(pid);

    process.stderr.write(`bench: ${runs} executions of \`true\` vs ${runs} bare spawns of \`sh -c true\`…\n`);
    const ka = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const body = JSON.stringify({ command: 'true', kind: 'shell', method: 'native' });
    const execMs: number[] = [];
    const spawnMs: number[] = [];
    for (let i = 0; i < 20; i++) {
      await post(ka, port, token, body);
      await bareSpawn();
    }
    // Interleaved, so machine load drifts affect both sides alike.
    for (let i = 0; i < runs; i++) {
      let t0 = nowMs();
      const r = await post(ka, port, token, body);
      execMs.push(nowMs() - t0);
      if (r.status !== 200 || !(JSON.parse(r.text) as { success?: boolean }).success) throw new Error(`execute failed: ${r.status} ${r.text}`);
      t0 = nowMs();
      await bareSpawn();
      spawnMs.push(nowMs() - t0);
    }
    ka.destroy();
    process.stderr.write('bench: starting an agent serving HTTPS…\n');
    const tlsAgent = await startAgent('agent-tls', { D8_TLS_DIR: path.join(dir, 'tls') });
    await new Promise((r) => setTimeout(r, 1000));
    const tlsLoad = await healthLoad(tlsAgent.pid, tlsAgent.port, true);

    const execMedian = median(execMs);
    const spawnMedian = median(spawnMs);
    const overhead = execMedian - spawnMedian;

    const f = (n: number, d = 1): string => n.toFixed(d);
    const rows: Array<[string, string, string, boolean | null]> = [
      ['/api/health throughput', `${f(rps, 0)} req/s`, '>= 5000 req/s', rps >= 5000],
      ['/api/health latency p50', `${f(percentile(lat, 50), 2)} ms`, '', null],
      ['/api/health latency p99', `${f(percentile(lat, 99), 2)} ms`, '', null],
      ['/api/health errors', String(load.errors), '0', load.errors === 0],
      ['agent CPU per health request', `${f(cpuPerReqUs)} µs`, '', null],
      ['health capacity of one agent core (1 s / CPU per request)', `${f(1e6 / cpuPerReqUs, 0)} req/s`, '', null],
      ['execute `true` (native), median', `${f(execMedian, 2)} ms`, '', null],
      ['bare spawn `sh -c true`, median', `${f(spawnMedian, 2)} ms`, '', null],
      ['execute overhead over bare spawn', `${f(overhead, 2)} ms`, '<= 5 ms', overhead <= 5],
      ['execute / bare spawn ratio', `${f(execMedian / spawnMedian, 2)}x`, '', null],
      ['agent RSS idle', `${f(idleRss)} MB`, '<= 60 MB', idleRss <= 60],
      ['agent RSS after the load', `${f(loadedRss)} MB`, '', null],
      ['TLS: /api/health throughput (HTTPS, keep-alive)', `${f(tlsLoad.rps, 0)} req/s`, '', null],
      ['TLS: /api/health latency p50', `${f(percentile(tlsLoad.lat, 50), 2)} ms`, '', null],
      ['TLS: /api/health latency p99', `${f(percentile(tlsLoad.lat, 99), 2)} ms`, '', null],
      ['TLS: /api/health errors', String(tlsLoad.load.errors), '0', tlsLoad.load.errors === 0],
      ['TLS: agent CPU per health request', `${f(tlsLoad.cpuPerReqUs)} µs`, '', null],
      ['TLS / plain HTTP health throughput', `${f(tlsLoad.rps / rps, 2)}x`, '', null],
    ];
    const out = [
      `Agent benchmark — ${os.cpus().length} CPUs, load average ${f(loadavg, 2)}, node ${process.versions.node}, ${connections} connections, ${durationS} s, ${runs} execute samples`,
      '',
      '| metric | measured | target | result |',
      '|---|---|---|---|',
      ...rows.map(([m, v, t, ok]) => `| ${m} | ${v} | ${t} | ${ok === null ? '' : ok ? 'pass' : 'FAIL'} |`),
    ];
    process.stdout.write(out.join('\n') + '\n');
    if (process.argv.includes('--strict') && rows.some((r) => r[3] === false)) process.exitCode = 1;
  } finally {
    cleanup();
  }
}

if (isMainThread) {
  main().catch((err: Error) => {
    process.stderr.write(`bench: ${err.message}\n`);
    process.exit(1);
  });
}
