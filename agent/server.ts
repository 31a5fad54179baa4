/**
 * The agent's HTTP API (node's http module, no framework): routing, auth, request logging, and
 * a guard that turns any unexpected error into a 500 without a stack trace.
 */
import fs from 'fs';
import http, { type IncomingMessage, type ServerResponse } from 'http';
import https from 'https';
import path from 'path';
import type { ZodError } from 'zod';
import {
  CHANNEL_EVERY_S, ExecuteRequestSchema, LIMITS, ROUTES, TokenChangeRequestSchema, isRebootSafe,
  type ChannelLine, type ExecuteResponse, type HealthResponse, type ParsedExecuteRequest, type RestartResponse, type Strategy, type TokenChangeResponse, type VersionResponse,
} from '../core/protocol';
import { weakTokenReason } from '../core/tokens';
import { checkTokenFileWritable, TokenFileUnwritableError, writeTokenFile } from './token-file';
import type { Logger } from '../core/logger';
import type { VersionInfo } from '../core/version-info';
import { AuthLockout, TokenChecker, bearerToken } from './auth';
import type { AgentConfig } from './config';
import { executeTask } from './executor';
import { HttpError, parseJson, readBody, sendError, sendJson } from './http-io';
import type { ExecutionMethodsProbe } from './methods';
import { UpdateStateReader } from './update-state';

export interface AgentServerDeps {
  config: AgentConfig;
  version: VersionInfo;
  logger: Logger;
  methods: ExecutionMethodsProbe;
  hostname: string;
  /** The agent's environment (tasks get a copy without secrets). */
  env: NodeJS.ProcessEnv;
  /** Called once the 202 of /api/restart has been flushed. */
  onRestart: () => void;
  /** The key pair to serve HTTPS with (see tls-cert.ts); absent: plain HTTP. */
  tls?: { keyPem: string; certPem: string } | null;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

const AUTO_ORDER: Strategy[] = ['docker', 'venv', 'native'];
const EXECUTE_FIELDS = Object.keys(ExecuteRequestSchema.shape).join(', ');

function schemaError(err: ZodError): HttpError {
  const issue = err.issues[0];
  if (issue.code === 'unrecognized_keys') {
    return new HttpError(400, `unknown field "${issue.keys[0]}" (allowed: ${EXECUTE_FIELDS})`, issue.keys[0]);
  }
  if (issue.path.length === 0) return new HttpError(400, 'request body must be a JSON object');
  const field = issue.path.join('.');
  return new HttpError(400, `${field}: ${issue.message}`, field);
}

function clientAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? 'unknown';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

const QUIET_ROUTES: ReadonlySet<string> = new Set([ROUTES.health, ROUTES.version]);

export class AgentServer {
  /** HTTPS when the agent has its key pair, else plain HTTP (agents installed before TLS, tests, swarm). */
  readonly http: http.Server | https.Server;
  private readonly tokens: TokenChecker;
  private readonly lockout: AuthLockout;
  private readonly updateState: UpdateStateReader;
  private readonly running = new Set<AbortController>();
  private readonly channels = new Set<ServerResponse>();
  private readonly routes: Map<string, Record<string, Handler>>;
  private readonly startedAt = process.hrtime.bigint();
  private restarting = false;

  constructor(private readonly deps: AgentServerDeps) {
    const c = deps.config;
    this.tokens = new TokenChecker(c.tokens);
    this.lockout = new AuthLockout({ maxFailures: c.authMaxFailures, windowMs: c.authWindowMs, lockoutMs: c.authLockoutMs });
    this.updateState = new UpdateStateReader(c.stateDir);
    const health: Handler = (_q, res) => sendJson(res, 200, this.health());
    const version: Handler = (_q, res) => sendJson(res, 200, this.versionBody());
    this.routes = new Map<string, Record<string, Handler>>([
      [ROUTES.health, { GET: health, HEAD: health }],
      [ROUTES.version, { GET: version, HEAD: version }],
      [ROUTES.execute, { POST: (q, r) => this.execute(q, r) }],
      [ROUTES.restart, { POST: (q, r) => this.restart(q, r) }],
      [ROUTES.token, { POST: (q, r) => this.changeToken(q, r) }],
      [ROUTES.channel, { GET: (q, r) => this.channel(q, r) }],
    ]);
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.dispatch(req, res);
    // A client that opens a connection and never finishes its handshake is dropped after 10 s.
    this.http = deps.tls
      ? https.createServer({ key: deps.tls.keyPem, cert: deps.tls.certPem, minVersion: 'TLSv1.2', handshakeTimeout: 10_000 }, handler)
      : http.createServer(handler);
    this.http.requestTimeout = 60_000; // receiving a request, not answering it (an execution may run for an hour)
    this.http.headersTimeout = 30_000;
    (this.http as http.Server).on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (socket.writable && err.code !== 'ECONNRESET') {
        socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"error":"malformed HTTP request"}');
      } else socket.destroy();
    });
  }

  get runningTasks(): number {
    return this.running.size;
  }

  /** Cancels every running task (their process groups are killed). */
  cancelAll(): void {
    for (const ac of this.running) ac.abort();
  }

  /** Resolves when no task is running any more, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.running.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    const methods = this.routes.get(pathname);
    const route = methods ? pathname : pathname.length > 120 ? `${pathname.slice(0, 120)}…` : pathname;
    let logged = false;
    const log = (): void => {
      if (logged) return;
      logged = true;
      const duration_ms = Math.round(Number(process.hrtime.bigint() - started) / 1e3) / 1e3;
      const fields = { method: req.method, route, status: res.statusCode, duration_ms };
      // Health and version are polled all day (master, HEALTHCHECK, deploys): debug, unless they failed.
      if (QUIET_ROUTES.has(route) && res.statusCode < 400) this.deps.logger.debug(fields, 'request');
      else this.deps.logger.info(fields, 'request');
    };
    res.once('finish', log);
    res.once('close', log);

    try {
      if (!methods) throw new HttpError(404, `no such route: ${route} (routes: ${Object.values(ROUTES).join(', ')})`);
      const handler = methods[req.method ?? ''];
      if (!handler) {
        const allow = Object.keys(methods).join(', ');
        throw new HttpError(405, `method ${String(req.method).slice(0, 20)} is not allowed on ${pathname} (allowed: ${allow})`, undefined, { Allow: allow });
      }
      const r = handler(req, res);
      if (r) r.catch((err: unknown) => this.fail(res, err));
    } catch (err) {
      this.fail(res, err);
    }
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (err instanceof HttpError) {
      sendError(res, err);
      return;
    }
    this.deps.logger.error({ err: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }, 'internal error while handling a request');
    sendJson(res, 500, { error: 'internal error' });
  }

  health(): HealthResponse {
    const v = this.deps.version;
    const u = this.updateState.current();
    return {
      status: 'ok',
      branch: v.branch,
      commit: v.commit,
      version: v.version,
      deployed_at: v.deployed_at,
      dirty: v.dirty,
      uptime_s: Math.round(Number(process.hrtime.bigint() - this.startedAt) / 1e6) / 1e3,
      hostname: this.deps.hostname,
      node_version: process.versions.node,
      python_version: this.deps.methods.pythonVersion,
      execution_methods: this.deps.methods.snapshot(),
      install_strategy: this.deps.config.installStrategy,
      supervisor: this.deps.config.supervisor,
      reboot_safe: isRebootSafe(this.deps.config.supervisor),
      update_pending: u.update_pending,
      update_failed: u.update_failed,
      running_executions: this.running.size,
      max_concurrency: this.deps.config.maxConcurrency,
      arch: process.arch,
    };
  }

  private versionBody(): VersionResponse {
    const v = this.deps.version;
    return { commit: v.commit, branch: v.branch, version: v.version, deployed_at: v.deployed_at };
  }

  /** Checks the bearer token; returns the one presented. */
  private authorize(req: IncomingMessage): string {
    const addr = clientAddress(req);
    const presented = bearerToken(req.headers.authorization);
    const decision = this.lockout.admit(addr, presented !== null && this.tokens.matches(presented));
    if (decision.kind === 'locked') {
      const s = Math.ceil(decision.retryAfterMs / 1000);
      throw new HttpError(429, `too many failed authentication attempts from ${addr}; retry in ${s} s`, undefined, { 'Retry-After': String(s) });
    }
    if (decision.kind === 'invalid' || presented === null) {
      const why = presented === null ? 'missing bearer token: send "Authorization: Bearer <agent token>"' : 'invalid token';
      throw new HttpError(401, why, undefined, { 'WWW-Authenticate': 'Bearer realm="d8-agent"' });
    }
    return presented;
  }

  /** Token rotation (see TokenChangeRequestSchema): the accepted set becomes [presented, new] or [presented]. */
  private async changeToken(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const presented = this.authorize(req);
    const parsed = TokenChangeRequestSchema.safeParse(parseJson(await readBody(req, res, LIMITS.maxBodyBytes)));
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new HttpError(400, `${i.path.join('.') || 'body'}: ${i.message} (expected {"action":"add","token":"…"} or {"action":"retire"})`, i.path.join('.') || undefined);
    }
    const change = parsed.data;
    let next = [presented];
    if (change.action === 'add') {
      const weak = weakTokenReason(change.token);
      if (weak) throw new HttpError(400, `token: ${weak}`, 'token');
      if (change.token !== presented) next = [presented, change.token];
    }
    const file = this.deps.config.tokenFile;
    try {
      checkTokenFileWritable(file);
      writeTokenFile(file, next);
    } catch (err) {
      if (err instanceof TokenFileUnwritableError) throw new HttpError(409, err.message);
      throw err;
    }
    this.tokens.replace(next);
    this.deps.logger.info({ action: change.action, accepted: next.length }, 'accepted tokens changed');
    const body: TokenChangeResponse = { accepted: next.length };
    sendJson(res, 200, body);
  }

  private async resolveMethod(request: ParsedExecuteRequest): Promise<Strategy> {
    if (request.method !== 'auto') {
      const s = await this.deps.methods.status(request.method);
      if (!s.available) throw new HttpError(409, `method ${request.method} is not available on this host: ${s.reason ?? 'unknown reason'}`, 'method');
      return request.method;
    }
    for (const m of AUTO_ORDER) {
      if ((await this.deps.methods.status(m)).available) return m;
    }
    return 'native';
  }

  private async workingDir(request: ParsedExecuteRequest): Promise<string | null> {
    if (request.working_dir === undefined) return null;
    const dir = path.resolve(request.working_dir);
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(dir);
    } catch {
      throw new HttpError(400, `working_dir ${dir} does not exist on this host`, 'working_dir');
    }
    if (!st.isDirectory()) throw new HttpError(400, `working_dir ${dir} is not a directory`, 'working_dir');
    return dir;
  }

  private async execute(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.authorize(req);
    const body = parseJson(await readBody(req, res, LIMITS.maxBodyBytes));
    const parsed = ExecuteRequestSchema.safeParse(body);
    if (!parsed.success) throw schemaError(parsed.error);
    const request = parsed.data;
    const max = this.deps.config.maxConcurrency;
    if (this.running.size >= max || this.restarting) {
      const why = this.restarting ? 'the agent is restarting' : `${this.running.size} executions are running (D8_MAX_CONCURRENCY=${max})`;
      throw new HttpError(429, `busy: ${why}; retry later`, undefined, { 'Retry-After': '1' });
    }
    const ac = new AbortController();
    this.running.add(ac);
    try {
      const workingDir = await this.workingDir(request);
      const method = await this.resolveMethod(request);
      // A client that goes away cancels its task instead of leaving it running unobserved.
      res.once('close', () => {
        if (!res.writableFinished) ac.abort();
      });
      const result: ExecuteResponse = await executeTask(
        { request, method, workingDir, signal: ac.signal },
        { venvDir: this.deps.config.venvDir, taskImage: this.deps.config.taskImage, python: this.deps.config.python, env: this.deps.env },
      );
      sendJson(res, 200, result);
    } finally {
      this.running.delete(ac);
    }
  }

  /** The stream GET /api/channel holds open (core/protocol.ts ChannelLineSchema). */
  private channel(req: IncomingMessage, res: ServerResponse): void {
    this.authorize(req);
    const raw = new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('every');
    const every = raw === null ? CHANNEL_EVERY_S.default : Number(raw);
    if (!Number.isFinite(every) || every < CHANNEL_EVERY_S.min || every > CHANNEL_EVERY_S.max) {
      throw new HttpError(400, `every: seconds between heartbeats, ${CHANNEL_EVERY_S.min}–${CHANNEL_EVERY_S.max} (default ${CHANNEL_EVERY_S.default})`, 'every');
    }
    if (this.channels.size >= LIMITS.maxChannels) {
      throw new HttpError(429, `${this.channels.size} channels are open (at most ${LIMITS.maxChannels}); retry later`, undefined, { 'Retry-After': '5' });
    }
    this.channels.add(res);
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    res.socket?.setNoDelay(true);
    const send = (line: ChannelLine): void => { res.write(`${JSON.stringify(line)}\n`); };
    const stateOf = (h: HealthResponse): string => JSON.stringify({ ...h, uptime_s: 0, running_executions: 0 });
    let last = this.health();
    send({ kind: 'health', health: last });
    const timer = setInterval(() => {
      const now = this.health();
      if (stateOf(now) !== stateOf(last)) send({ kind: 'health', health: now });
      else send({ kind: 'heartbeat', uptime_s: now.uptime_s });
      last = now;
    }, every * 1000);
    res.once('close', () => {
      clearInterval(timer);
      this.channels.delete(res);
    });
  }

  private restart(req: IncomingMessage, res: ServerResponse): void {
    this.authorize(req);
    const body: RestartResponse = { status: 'restarting' };
    const first = !this.restarting;
    this.restarting = true;
    if (first) res.once('finish', () => this.deps.onRestart());
    sendJson(res, 202, body, { Connection: 'close' });
  }
}
