/**
 * What bench:soak reads from outside the master, so it keeps working while the master's insides move:
 * sizes on disk, the master's RSS from /proc, its Prometheus /metrics, the agents' processes.
 */
import fs from 'fs';
import http from 'http';
import path from 'path';

/** Bytes of a file or of everything under a directory (0 when absent). */
export function diskBytes(p: string): number {
  let st: fs.Stats;
  try { st = fs.lstatSync(p); } catch { return 0; }
  if (!st.isDirectory()) return st.isFile() ? st.size : 0;
  let sum = 0;
  for (const e of fs.readdirSync(p)) sum += diskBytes(path.join(p, e));
  return sum;
}

/** The store with its WAL and shared-memory files: what it takes on the card. */
export function storeBytes(dbFile: string): number {
  return diskBytes(dbFile) + diskBytes(`${dbFile}-wal`) + diskBytes(`${dbFile}-shm`);
}

/**
 * The log files of the agent on `port` under a slave's HOME: every file below `~/.d8-agent` whose name
 * has `.log` in it (rotated copies included) and whose path names the port (`agent-<port>/agent.log`
 * of setsid/cron/units, `logs/install-<port>-…` of the installer). The bench's slaves are local
 * (native strategy); a docker agent's log lives in the engine instead and is not counted here.
 */
export function agentLogBytes(slaveHome: string, port: number): number {
  const mark = new RegExp(`(^|[^0-9])${port}([^0-9]|$)`);
  const walk = (dir: string, rel: string): number => {
    let sum = 0;
    let entries: fs.Dirent[];
    try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return 0; }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) sum += walk(p, r);
      else if (e.isFile() && e.name.includes('.log') && mark.test(r)) sum += diskBytes(p);
    }
    return sum;
  };
  return walk(path.join(slaveHome, '.d8-agent'), '');
}

/** Resident set size of `pid` in bytes (VmRSS), or null when it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Pids of the agents serving `port` under `slaveHome` (their command line names `agent-<port>/agent.js`). */
export function agentPids(slaveHome: string, port: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes(slaveHome) && cmd.includes(`agent-${port}/agent.js`)) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

export interface Sample { name: string; labels: Record<string, string>; value: number }

/** Prometheus text exposition → samples (comments skipped). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of every sample named `name` whose labels include `where`. */
export function metricSum(samples: Sample[], name: string, where: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of samples) if (s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  return sum;
}

/** GET on 127.0.0.1:`port`; resolves with status and body (never rejects: status 0 when unreachable). */
export function httpGet(port: number, p: string, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return httpCall(port, 'GET', p, undefined, headers, timeoutMs);
}

export function httpCall(port: number, method: string, p: string, body: unknown, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({
      host: '127.0.0.1', port, method, path: p, timeout: timeoutMs, agent: false,
      headers: { ...headers, ...(data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}) },
    }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end(data);
  });
}
