/**
 * HTTP client for the agents (GET /api/health, POST /api/restart, POST /api/execute): axios with
 * axios-retry (3 attempts, exponential backoff), keep-alive sockets, a per-attempt timeout and an
 * overall deadline per call, so one slow slave costs at most `deadlineMs` and never blocks others.
 * Every answer is parsed with the protocol's zod schemas.
 *
 * HTTPS with a pinned certificate (no CA): a slave whose install reported its certificate's SHA-256
 * fingerprint (the store's agent_pins, or `tlsFingerprint` on the target) is spoken to over HTTPS,
 * and a connection is handed to a request only once the certificate it presents has that
 * fingerprint, so nothing (no token, no command) is ever written to an impostor. A slave without a
 * pin (installed before TLS, --no-tls) is spoken to over plain HTTP.
 */
import http from 'http';
import https from 'https';
import net from 'net';
import tls from 'tls';
import axios, { AxiosError, type AxiosInstance } from 'axios';
import axiosRetry, { exponentialDelay } from 'axios-retry';
import {
  ExecuteRequestSchema, ExecuteResponseSchema, HealthResponseSchema, RestartResponseSchema, ROUTES, TokenChangeRequestSchema, TokenChangeResponseSchema,
  type ExecuteRequest, type ExecuteResponse, type HealthResponse, type TokenChangeRequest, type TokenChangeResponse,
} from '../core/protocol';
import type { SlaveConfig } from '../core/stack-config';

export interface AgentClientOptions {
  /** Attempts per check, the first included. */
  attempts?: number;
  attemptTimeoutMs?: number;
  /** Hard cap for a whole call including retries. */
  deadlineMs?: number;
  /** Base of the exponential retry delay. */
  retryDelayMs?: number;
  maxSockets?: number;
  /**
   * Reuse connections (default). Off for callers whose POSTs must never meet a connection the agent
   * is closing as idle at that instant (ECONNRESET, and no way to know whether the task started).
   */
  keepAlive?: boolean;
  /** The recorded certificate pin of a slave by name (store.pins.lookup(stack)); without it only `tlsFingerprint` on a target pins. */
  pins?: (slave: string) => string | null;
}

/**
 * Where an agent is. `tlsFingerprint` set (a string, or null for plain HTTP) wins over the client's
 * `pins` lookup by `name`: a deploy's own check knows the certificate the install just reported.
 */
export type AgentTarget = Pick<SlaveConfig, 'agentHost' | 'agentPort'> & { name?: string; tlsFingerprint?: string | null };

/** The certificate an address presented instead of the pinned one. */
export interface PinMismatch { address: string; expected: string; presented: string | null }

export type HealthResult =
  | { ok: true; health: HealthResponse; latencyMs: number }
  /**
   * `reachable`: the agent answered HTTP (so /api/restart may help); otherwise the host or port is down.
   * `pinMismatch`: something answered with another certificate: not the agent, nothing was sent to it.
   */
  | { ok: false; error: string; reachable: boolean; latencyMs: number; pinMismatch?: PinMismatch };

export class AgentCallError extends Error {
  constructor(message: string, readonly status: number | null) {
    super(message);
    this.name = 'AgentCallError';
  }
}

/** The agent's address presented a certificate other than the pinned one: possibly an impersonation. Nothing was sent. */
export class AgentPinMismatchError extends AgentCallError {
  constructor(readonly mismatch: PinMismatch) {
    super(`${mismatch.address} presented certificate ${mismatch.presented ?? '(none)'}, not the pinned ${mismatch.expected}: ` +
      'possibly an impersonation; nothing was sent to it', null);
    this.name = 'AgentPinMismatchError';
  }
}

function pinMismatchOf(err: unknown): AgentPinMismatchError | null {
  if (err instanceof AgentPinMismatchError) return err;
  const cause = err instanceof AxiosError ? (err as { cause?: unknown }).cause : undefined;
  return cause instanceof AgentPinMismatchError ? cause : null;
}

/**
 * A keep-alive agent whose pooled sockets do not pin the request that opened them. Node's Agent keeps
 * a copy of the first request's options for each socket's lifetime (its close listener needs the pool
 * key), and axios puts redirect hooks in those options whose closures hold that request, its response
 * and config: with one socket per slave that is ~17 KB per slave kept for as long as the socket lives
 * (17 MB for 1,000 slaves), which also raises V8's next GC threshold. We never follow redirects
 * (maxRedirects: 0), so the hooks are dropped before the socket is created.
 */
type CreateSocket = (req: http.ClientRequest, options: Record<string, unknown>, cb: (err: Error | null, s?: unknown) => void) => void;
// createSocket is Node's (undocumented, long-stable) hook between a request and its new socket.
const createSocketWithoutHooks = (agent: http.Agent, ...[req, options, cb]: Parameters<CreateSocket>): void => {
  const { beforeRedirect: _b, beforeRedirects: _bs, ...rest } = options;
  (http.Agent.prototype as unknown as { createSocket: CreateSocket }).createSocket.call(agent, req, rest, cb);
};

class PoolAgent extends http.Agent {
  createSocket(...args: Parameters<CreateSocket>): void {
    createSocketWithoutHooks(this, ...args);
  }
}

const addressKey = (host: string, port: string | number): string => `${host.replace(/^\[|\]$/g, '')}:${port}`;

/**
 * PoolAgent for HTTPS with pinned certificates: a new connection is given to its request only after
 * the handshake, when the certificate has the fingerprint pinned for its address; otherwise the
 * socket is destroyed and the request fails with AgentPinMismatchError before writing a byte.
 */
class PinnedPoolAgent extends https.Agent {
  /** host:port -> the fingerprint that address must present. */
  readonly pins = new Map<string, string>();

  constructor(opts: https.AgentOptions, private readonly handshakeTimeoutMs: number) {
    super(opts);
  }

  createSocket(...args: Parameters<CreateSocket>): void {
    createSocketWithoutHooks(this, ...args);
  }

  /** Pooled per address and pin: a connection checked against one fingerprint never serves a request expecting another. */
  getName(options?: https.RequestOptions): string {
    const address = addressKey(String(options?.host ?? options?.hostname ?? ''), String(options?.port ?? ''));
    return `${super.getName(options)}:pin=${this.pins.get(address) ?? ''}`;
  }

  // Node's Agent always passes its callback (the async form: the socket is handed over when ready).
  createConnection(options: https.RequestOptions, oncreate?: (err: Error | null, s: net.Socket) => void): undefined {
    const done = oncreate!;
    const address = addressKey(String(options.host ?? options.hostname), String(options.port));
    const expected = this.pins.get(address);
    const sock = tls.connect({ ...(options as tls.ConnectionOptions), rejectUnauthorized: false });
    const fail = (err: Error): void => { sock.destroy(); done(err, sock); };
    sock.setTimeout(this.handshakeTimeoutMs, () => fail(new Error(`TLS handshake with ${address} timed out after ${this.handshakeTimeoutMs} ms`)));
    sock.once('error', fail);
    sock.once('secureConnect', () => {
      sock.setTimeout(0);
      sock.removeListener('error', fail);
      const presented = sock.getPeerCertificate()?.fingerprint256 || null;
      if (expected !== undefined && presented === expected) done(null, sock);
      else fail(new AgentPinMismatchError({ address, expected: expected ?? '(none recorded)', presented }));
    });
    return undefined;
  }
}

export const agentBaseUrl = (s: Pick<SlaveConfig, 'agentHost' | 'agentPort'>, scheme: 'http' | 'https' = 'http'): string => {
  const host = s.agentHost.includes(':') && !s.agentHost.startsWith('[') ? `[${s.agentHost}]` : s.agentHost;
  return `${scheme}://${host}:${s.agentPort}`;
};

/** Whether something accepts TCP connections on the agent's port (a hung agent does: its kernel still accepts). */
function portAccepts(slave: Pick<SlaveConfig, 'agentHost' | 'agentPort'>, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: slave.agentHost, port: slave.agentPort });
    const done = (ok: boolean): void => { sock.destroy(); resolve(ok); };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

const TIMEOUT_CODES = new Set(['ERR_CANCELED', 'ECONNABORTED', 'ETIMEDOUT']);

function describe(err: unknown): { msg: string; reachable: boolean } {
  if (err instanceof AxiosError) {
    if (err.response) {
      const body = err.response.data as { error?: unknown } | undefined;
      const detail = body && typeof body === 'object' && typeof body.error === 'string' ? `: ${body.error}` : '';
      return { msg: `HTTP ${err.response.status}${detail}`, reachable: true };
    }
    if (err.code === 'ERR_CANCELED') return { msg: 'deadline exceeded', reachable: false };
    if (err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT') return { msg: `timeout (${err.message})`, reachable: false };
    return { msg: err.code ? `${err.code}` : err.message, reachable: false };
  }
  return { msg: (err as Error).message ?? String(err), reachable: false };
}

export class AgentClient {
  private readonly http: AxiosInstance;
  private readonly attempts: number;
  private readonly deadlineMs: number;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: PinnedPoolAgent;
  private readonly pins: ((slave: string) => string | null) | undefined;

  constructor(opts: AgentClientOptions = {}) {
    this.attempts = opts.attempts ?? 3;
    this.deadlineMs = opts.deadlineMs ?? 5000;
    this.pins = opts.pins;
    const retryDelayMs = opts.retryDelayMs ?? 100;
    const attemptTimeoutMs = opts.attemptTimeoutMs ?? 2000;
    const pool = { keepAlive: opts.keepAlive ?? true, maxSockets: opts.maxSockets ?? 4, timeout: 60_000 };
    this.httpAgent = new PoolAgent(pool);
    this.httpsAgent = new PinnedPoolAgent(pool, attemptTimeoutMs);
    this.http = axios.create({ timeout: attemptTimeoutMs, httpAgent: this.httpAgent, httpsAgent: this.httpsAgent, proxy: false, maxRedirects: 0 });
    axiosRetry(this.http, {
      retries: this.attempts - 1,
      shouldResetTimeout: true,
      retryDelay: (n, e) => exponentialDelay(n, e, retryDelayMs),
      retryCondition: (e) => {
        if (e.code === 'ERR_CANCELED' || pinMismatchOf(e)) return false;
        if (e.config?.method && e.config.method.toLowerCase() !== 'get') return false;
        return !e.response || e.response.status >= 500 || e.response.status === 429;
      },
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** The pin for this target: its own `tlsFingerprint` when set, else the recorded one, else none (plain HTTP). */
  pinOf(t: AgentTarget): string | null {
    if (t.tlsFingerprint !== undefined) return t.tlsFingerprint;
    return t.name !== undefined && this.pins ? this.pins(t.name) : null;
  }

  /** The URL of `route` on the agent: https (its pin registered for the connection check) when pinned, else http. */
  url(t: AgentTarget, route: string): string {
    const pin = this.pinOf(t);
    if (pin === null) return agentBaseUrl(t) + route;
    this.httpsAgent.pins.set(addressKey(t.agentHost, t.agentPort), pin);
    return agentBaseUrl(t, 'https') + route;
  }

  /**
   * The whole-call deadline (all attempts and retry delays). Not AbortSignal.timeout: its timer and
   * signal stay alive for the full deadline after the call is done (1,000 checks a sweep leave
   * thousands of them behind); this one is cleared as soon as the call settles.
   */
  private async withDeadline<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), this.deadlineMs);
    try {
      return await call(ac.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  async health(slave: AgentTarget): Promise<HealthResult> {
    const started = Date.now();
    try {
      const r = await this.withDeadline((signal) => this.http.get(this.url(slave, ROUTES.health), { signal }));
      const parsed = HealthResponseSchema.safeParse(r.data);
      if (!parsed.success) {
        const i = parsed.error.issues[0];
        return { ok: false, error: `invalid /api/health answer: ${i.path.join('.') || '(root)'} ${i.message}`, reachable: true, latencyMs: Date.now() - started };
      }
      return { ok: true, health: parsed.data, latencyMs: Date.now() - started };
    } catch (err) {
      const pin = pinMismatchOf(err);
      if (pin) return { ok: false, error: pin.message, reachable: true, latencyMs: Date.now() - started, pinMismatch: pin.mismatch };
      const d = describe(err);
      // A timeout on an open port is an agent that hangs (reachable: a restart may help), not a host that is down.
      if (err instanceof AxiosError && err.code && TIMEOUT_CODES.has(err.code) && (await portAccepts(slave, 1000))) {
        return { ok: false, error: `${d.msg}: the port accepts connections but the agent does not answer`, reachable: true, latencyMs: Date.now() - started };
      }
      return { ok: false, error: d.msg, reachable: d.reachable, latencyMs: Date.now() - started };
    }
  }

  async restart(slave: AgentTarget, token: string): Promise<void> {
    try {
      const r = await this.withDeadline((signal) => this.http.post(this.url(slave, ROUTES.restart), {}, {
        headers: { authorization: `Bearer ${token}` }, signal,
      }));
      const parsed = RestartResponseSchema.safeParse(r.data);
      if (!parsed.success) {
        const i = parsed.error.issues[0];
        throw new AgentCallError(`restart refused: invalid /api/restart answer: ${i.path.join('.') || '(root)'} ${i.message}`, r.status);
      }
    } catch (err) {
      if (err instanceof AgentCallError) throw err;
      const pin = pinMismatchOf(err);
      if (pin) throw pin;
      const d = describe(err);
      throw new AgentCallError(`restart refused: ${d.msg}`, err instanceof AxiosError ? err.response?.status ?? null : null);
    }
  }

  /** POST /api/token: the agent accepts [token, change.token] (add) or only token (retire). */
  async changeToken(slave: AgentTarget, token: string, change: TokenChangeRequest): Promise<TokenChangeResponse> {
    const body = TokenChangeRequestSchema.parse(change);
    try {
      const r = await this.withDeadline((signal) => this.http.post(this.url(slave, ROUTES.token), body, {
        headers: { authorization: `Bearer ${token}` }, signal,
      }));
      return TokenChangeResponseSchema.parse(r.data);
    } catch (err) {
      const pin = pinMismatchOf(err);
      if (pin) throw pin;
      const d = describe(err);
      throw new AgentCallError(`token ${change.action} refused: ${d.msg}`, err instanceof AxiosError ? err.response?.status ?? null : null);
    }
  }

  /**
   * Opens the agent's channel (GET /api/channel): resolves with the open stream once the agent answered
   * 200 within `connectTimeoutMs`; an AgentCallError carrying the status otherwise (404: an agent from
   * before channels), an AgentPinMismatchError when another certificate answered.
   */
  openChannel(slave: AgentTarget, token: string, everyS: number, connectTimeoutMs = 5000): Promise<http.IncomingMessage> {
    const url = this.url(slave, `${ROUTES.channel}?every=${everyS}`);
    const secure = url.startsWith('https:');
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).get(url, { agent: secure ? this.httpsAgent : this.httpAgent, headers: { authorization: `Bearer ${token}` } });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${connectTimeoutMs} ms`)), connectTimeoutMs);
      req.once('error', (err) => {
        clearTimeout(timer);
        reject(pinMismatchOf(err) ?? new AgentCallError(`channel: ${(err as NodeJS.ErrnoException).code ?? err.message}`, null));
      });
      req.once('response', (res) => {
        clearTimeout(timer);
        if (res.statusCode === 200) return resolve(res);
        res.resume();
        reject(new AgentCallError(`channel refused: HTTP ${res.statusCode}`, res.statusCode ?? null));
      });
    });
  }

  async execute(slave: AgentTarget, token: string, task: ExecuteRequest): Promise<ExecuteResponse> {
    const body = ExecuteRequestSchema.parse(task);
    try {
      const r = await this.http.post(this.url(slave, ROUTES.execute), body, {
        headers: { authorization: `Bearer ${token}` },
        timeout: (body.timeout_s + 30) * 1000,
        maxContentLength: 8 * 1024 * 1024,
      });
      return ExecuteResponseSchema.parse(r.data);
    } catch (err) {
      const pin = pinMismatchOf(err);
      if (pin) throw pin;
      const d = describe(err);
      throw new AgentCallError(`execute failed: ${d.msg}`, err instanceof AxiosError ? err.response?.status ?? null : null);
    }
  }
}

/**
 * Polls the agent's health until `accept` holds, `timeoutMs` has passed, or `stop()` says so;
 * returns the last answer (which the caller checks: it may be a failure or a not-yet-accepted one).
 */
export async function waitForHealth(
  client: AgentClient,
  slave: AgentTarget,
  accept: (health: HealthResponse) => boolean,
  timeoutMs: number,
  stop: () => boolean = () => false,
): Promise<HealthResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await client.health(slave);
    if ((r.ok && accept(r.health)) || Date.now() >= deadline || stop()) return r;
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** One health check without retries, for one-off callers (a deploy's up-to-date check, tests, benches). */
export async function probeHealth(host: string, port: number, timeoutMs = 3000, tlsFingerprint: string | null = null): Promise<HealthResult> {
  const client = new AgentClient({ attempts: 1, attemptTimeoutMs: timeoutMs, deadlineMs: timeoutMs });
  try {
    return await client.health({ agentHost: host, agentPort: port, tlsFingerprint });
  } finally {
    client.close();
  }
}
