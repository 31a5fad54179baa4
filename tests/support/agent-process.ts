/**
 * Spawns a REAL agent process (dist/agent/main.js by default) on an ephemeral loopback port and
 * talks HTTP to it. Shared by the agent, master and provisioning tests.
 *
 *   const agent = await startAgent();            // random strong token, fresh version file
 *   const r = await agent.request('GET', '/api/health');
 *   await agent.stop();                           // always, in afterAll
 */
import { spawn, type ChildProcess } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import http from 'http';
import https from 'https';
import os from 'os';
import path from 'path';
import type { VersionInfo } from '../../core/version-info';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const AGENT_ENTRY = path.join(REPO_ROOT, 'dist', 'agent', 'main.js');

export function strongToken(): string {
  return crypto.randomBytes(24).toString('base64url');
}

export function makeTempDir(prefix = 'd8-agent-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes a valid version_info.json with a random commit (or the given fields) and returns it. */
export function writeVersionFile(dir: string, overrides: Partial<VersionInfo> = {}): { file: string; info: VersionInfo } {
  const info: VersionInfo = {
    branch: 'test-branch',
    commit: crypto.randomBytes(20).toString('hex'),
    version: '9.8.7',
    deployed_at: new Date().toISOString(),
    dirty: false,
    ...overrides,
  };
  const file = path.join(dir, 'version_info.json');
  fs.writeFileSync(file, JSON.stringify(info, null, 2) + '\n');
  return { file, info };
}

/** The parent environment without any D8_/TELEGRAM_ setting that could leak into the agent. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('D8_') && !k.startsWith('TELEGRAM_') && k !== 'INVOCATION_ID') env[k] = v;
  }
  return { ...env, ...extra };
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface HttpRequestOptions {
  host?: string;
  port: number;
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string or Buffer is sent as is. */
  body?: unknown;
  timeoutMs?: number;
  /** Source address of the connection (e.g. 127.0.0.2, to look like another client). */
  localAddress?: string;
  /**
   * `auto` (default): HTTPS without certificate checks first (an installed agent serves HTTPS), plain
   * HTTP when the other side is not TLS. Tests about the protocol's scheme choose one explicitly.
   */
  scheme?: 'http' | 'https' | 'auto';
}

/** A TLS client error meaning "the other side does not speak TLS". */
const notTls = (err: NodeJS.ErrnoException): boolean =>
  err.code === 'EPROTO' || err.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long|ECONNRESET|socket hang up/i.test(err.message);

/** One request on a fresh connection; resolves with status, headers and the (parsed) body. */
export async function httpRequest(opts: HttpRequestOptions): Promise<HttpAnswer> {
  const scheme = opts.scheme ?? 'auto';
  if (scheme !== 'auto') return requestWith(opts, scheme);
  try {
    return await requestWith(opts, 'https');
  } catch (err) {
    if (!notTls(err as NodeJS.ErrnoException)) throw err;
    return requestWith(opts, 'http');
  }
}

function requestWith(opts: HttpRequestOptions, scheme: 'http' | 'https'): Promise<HttpAnswer> {
  let payload: Buffer | undefined;
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.body !== undefined) {
    payload = Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = (scheme === 'https' ? https : http).request(
      { host: opts.host ?? '127.0.0.1', port: opts.port, method: opts.method, path: opts.path, headers, agent: false, localAddress: opts.localAddress, rejectUnauthorized: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 120_000, () => req.destroy(new Error(`${opts.method} ${opts.path}: no answer within ${opts.timeoutMs ?? 120_000} ms`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

export type LogLine = Record<string, unknown>;

export interface StartAgentOptions {
  /** Default: a random strong token, passed as D8_AGENT_TOKEN (unless env sets D8_AGENT_TOKEN_FILE). */
  token?: string;
  /** Extra environment (D8_* settings); the parent's D8_* variables are never inherited. */
  env?: NodeJS.ProcessEnv;
  /** Default: a fresh version file with a random commit in the agent's temp dir. */
  versionFile?: string;
  /** Command to run instead of `node dist/agent/main.js`, e.g. [node, bin/d8.js, 'agent']. */
  command?: string[];
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  cwd?: string;
  startTimeoutMs?: number;
}

export class AgentHandle {
  private out = '';
  private readonly waiters = new Set<() => void>();
  /** Every agent pid seen in a "listening" line (a restart adds one). */
  readonly pids = new Set<number>();

  constructor(
    readonly child: ChildProcess,
    readonly token: string,
    readonly tmpDir: string,
    readonly versionFile: string,
    readonly version: VersionInfo | null,
    readonly host: string,
    public port = 0,
  ) {
    const onData = (c: Buffer): void => {
      this.out += c.toString('utf8');
      for (const w of [...this.waiters]) w();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', () => {
      for (const w of [...this.waiters]) w();
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** The fingerprint of the certificate it serves (its "listening" line), null for plain HTTP. */
  tlsFingerprint: string | null = null;

  get scheme(): 'http' | 'https' {
    return this.tlsFingerprint ? 'https' : 'http';
  }

  get url(): string {
    return `${this.scheme}://${this.host}:${this.port}`;
  }

  /** Everything the agent (and any agent it restarted into) wrote to stdout and stderr. */
  output(): string {
    return this.out;
  }

  logLines(): LogLine[] {
    const lines: LogLine[] = [];
    for (const l of this.out.split('\n')) {
      if (!l.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(l) as LogLine);
      } catch {
        /* a partial line */
      }
    }
    return lines;
  }

  /** Resolves with the first log line matching `pred` (already written or to come). */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 30_000, what = 'a matching log line'): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = this.logLines().find(pred);
        if (hit) {
          done();
          resolve(hit);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; agent output:\n${this.out.slice(-4000)}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** A request to the agent; `token: null` sends no Authorization header (default: the agent's token). */
  request(method: string, urlPath: string, body?: unknown, opts: { token?: string | null; headers?: Record<string, string>; timeoutMs?: number; localAddress?: string } = {}): Promise<HttpAnswer> {
    const headers = { ...(opts.headers ?? {}) };
    const token = opts.token === undefined ? this.token : opts.token;
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    return httpRequest({ host: this.host, port: this.port, method, path: urlPath, headers, body, timeoutMs: opts.timeoutMs, localAddress: opts.localAddress, scheme: this.scheme });
  }

  execute(body: unknown, opts: { timeoutMs?: number } = {}): Promise<HttpAnswer> {
    return this.request('POST', '/api/execute', body, opts);
  }

  /** SIGTERM every agent pid we know of (including restarted ones), SIGKILL after 5 s; removes the temp dir. */
  async stop(): Promise<void> {
    const pids = new Set<number>([...this.pids]);
    for (const l of this.logLines()) if (l.msg === 'listening' && typeof l.pid === 'number') pids.add(l.pid);
    if (this.child.pid) pids.add(this.child.pid);
    for (const pid of pids) signal(pid, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && [...pids].some(alive)) await sleep(50);
    for (const pid of pids) if (alive(pid)) signal(pid, 'SIGKILL');
    fs.rmSync(this.tmpDir, { recursive: true, force: true });
  }

  /** @internal */
  trackListening(l: LogLine): void {
    if (typeof l.pid === 'number') this.pids.add(l.pid);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie still answers kill(0); treat it as gone.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

function assertBuilt(command?: string[]): void {
  if (command) return;
  if (!fs.existsSync(AGENT_ENTRY)) {
    throw new Error(`${AGENT_ENTRY} is missing: build first with \`npx tsc -p tsconfig.json\``);
  }
}

/** Starts an agent and waits until it logs `listening`; rejects with its output if it exits first. */
export async function startAgent(opts: StartAgentOptions = {}): Promise<AgentHandle> {
  assertBuilt(opts.command);
  const tmpDir = makeTempDir();
  const token = opts.token ?? strongToken();
  let versionFile = opts.versionFile;
  let version: VersionInfo | null = null;
  if (!versionFile) ({ file: versionFile, info: version } = writeVersionFile(tmpDir));
  const host = opts.host ?? '127.0.0.1';
  const env = cleanEnv({
    D8_AGENT_TOKEN: token,
    D8_AGENT_PORT: String(opts.port ?? 0),
    D8_AGENT_HOST: host,
    D8_VERSION_FILE: versionFile,
    ...(opts.env ?? {}),
  });
  const [file, ...args] = opts.command ?? [process.execPath, AGENT_ENTRY];
  const child = spawn(file, args, { env, cwd: opts.cwd ?? tmpDir, stdio: ['ignore', 'pipe', 'pipe'] });
  const agent = new AgentHandle(child, token, tmpDir, versionFile, version, host);
  const exited = new Promise<never>((_r, reject) => {
    child.once('exit', (code, sig) => reject(new Error(`the agent exited (code ${code}, signal ${sig}) before listening:\n${agent.output().slice(-4000)}`)));
    child.once('error', (err) => reject(new Error(`could not spawn the agent: ${err.message}`)));
  });
  exited.catch(() => undefined);
  try {
    const line = await Promise.race([
      agent.waitForLog((l) => l.msg === 'listening' && l.pid === child.pid, opts.startTimeoutMs ?? 30_000, 'the agent to listen'),
      exited,
    ]);
    agent.port = Number(line.port);
    agent.tlsFingerprint = typeof line.tls_fingerprint === 'string' ? line.tls_fingerprint : null;
    agent.trackListening(line);
  } catch (err) {
    await agent.stop();
    throw err;
  }
  return agent;
}

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the agent expecting it to refuse to start; resolves with its exit code and output. */
export function runAgentToExit(env: NodeJS.ProcessEnv, timeoutMs = 30_000, command?: string[]): Promise<ExitResult> {
  assertBuilt(command);
  const [file, ...args] = command ?? [process.execPath, AGENT_ENTRY];
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: cleanEnv({ D8_AGENT_HOST: '127.0.0.1', D8_AGENT_PORT: '0', ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the agent did not exit within ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig, stdout, stderr });
    });
  });
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 30_000, what = 'a condition', intervalMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/**
 * GET /api/health of an installed agent whatever it serves (HTTPS without certificate checks, else
 * plain HTTP), parsed with the protocol's schema: for tests that check an install, not the pinning
 * (tests/integration/agent-tls.test.ts and tests/system/agent-tls.test.ts check that).
 */
export async function probeInstalled(host: string, port: number, timeoutMs = 3000): Promise<import('../../master/agent-client').HealthResult> {
  const { HealthResponseSchema } = await import('../../core/protocol');
  const started = Date.now();
  try {
    const r = await httpRequest({ host, port, method: 'GET', path: '/api/health', timeoutMs });
    const parsed = HealthResponseSchema.safeParse(r.body);
    if (r.status !== 200 || !parsed.success) return { ok: false, error: `HTTP ${r.status}: ${r.text.slice(0, 200)}`, reachable: true, latencyMs: Date.now() - started };
    return { ok: true, health: parsed.data, latencyMs: Date.now() - started };
  } catch (err) {
    return { ok: false, error: (err as Error).message, reachable: false, latencyMs: Date.now() - started };
  }
}
