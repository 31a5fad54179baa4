/**
 * The master's API on the dashboard's HTTP server. Requests (issue 16), for programs that ask a person:
 *   POST /api/requests                 file a request (scope requests:write) → 201 the request
 *   GET  /api/requests[?status=&limit=&before=] list, newest first, paged (requests:read) → { requests, next_before }
 *   GET  /api/requests/:id[?wait=S]    one request; with wait, blocks up to S seconds (≤ 120) for a decision
 *   POST /api/requests/:id/decision    { decision, note? } (requests:decide)
 *   GET  /api/spend[?month=YYYY-MM]    approved costs against the budgets (requests:read)
 * Tasks (issue 18):
 *   POST /api/tasks                    { command, kind?, method?, timeout_s?, working_dir?, needs?, retry_on_other? } (tasks:run)
 *                                      → the slave the master chose, why, and the agent's result; 409 when none fits
 * Every answer is JSON; errors are `{ error, field? }` with 400 (naming the field), 401, 403, 404,
 * 405, 409, 413, 415 or 429, like the agent's. Tokens are `Authorization: Bearer`, never logged.
 */
import type { IncomingMessage, ServerResponse } from 'http';
import type { ZodError } from 'zod';
import type { Logger } from '../../core/logger';
import type { FleetConfig } from '../../core/stack-config';
import { scopeAllows, type ApiScope, type ApiTokenInfo } from '../../core/api-tokens';
import { MonthSchema, RequestsApiConfigSchema } from '../../core/approval';
import { ApiCreateRequestSchema, DecisionInputSchema, ListRequestsQuerySchema, RequestIdSchema, RequestStatusSchema } from '../../core/requests';
import type { Store } from '../store';
import { HttpError, clientAddress, readJsonObject, requestErrorToHttp, sendJson } from '../dashboard/http';
import { checkBudgets } from '../requests/budget-watch';
import { DECISION_PAST, decideRequest } from '../requests/decide';
import { fileRequest } from '../requests/intake';
import { monthOf } from '../requests/month';
import { spendReport } from '../requests/spend-report';
import { DecisionWaits } from './decision-wait';
import { RoutedTaskRequestSchema, type RoutedTaskResult } from '../../core/tasks';
import { LIMITS } from '../../core/protocol';
import { AllBusyError, NoFitError, TaskFailedError } from '../tasks/router';
import { AuthFailures, RateLimiter } from './rate-limit';

const BODY_LIMIT = 64 * 1024;
export const MAX_WAIT_S = 120;

export interface MasterApiDeps {
  config: Pick<FleetConfig, 'stack' | 'approvalRules' | 'budgets' | 'requestsApi'>;
  store: Store;
  logger: Logger;
  trustProxy: boolean;
  now?: () => number;
  /** Runs routed tasks (POST /api/tasks); absent: that route answers 404. */
  tasks?: { run(input: unknown): Promise<RoutedTaskResult> };
}

interface Call { req: IncomingMessage; res: ServerResponse; url: URL; params: string[]; token: ApiTokenInfo }
interface Route { pattern: RegExp; methods: Partial<Record<'GET' | 'POST', { scope: ApiScope; run: (c: Call) => Promise<void> | void }>> }

function fieldError(err: ZodError, what: string): HttpError {
  const i = err.issues[0];
  const field = i.code === 'unrecognized_keys' ? i.keys.join(', ') : i.path.join('.') || '(body)';
  const msg = i.code === 'unrecognized_keys' ? 'is not a known field' : i.message;
  return new HttpError(400, `invalid ${what}: ${field} ${msg}`, {}, field);
}

export class MasterApi {
  private readonly limiter: RateLimiter;
  private readonly authFailures: AuthFailures;
  private readonly waits: DecisionWaits;
  private readonly routes: Route[];
  private readonly now: () => number;

  constructor(private readonly d: MasterApiDeps) {
    this.now = d.now ?? Date.now;
    const cfg = d.config.requestsApi ?? RequestsApiConfigSchema.parse({});
    this.limiter = new RateLimiter(cfg.ratePerMinute, this.now);
    this.authFailures = new AuthFailures(30, 5 * 60_000, this.now);
    this.waits = new DecisionWaits(d.store.requests);
    this.routes = [
      { pattern: /^\/api\/requests$/, methods: { GET: { scope: 'requests:read', run: (c) => this.list(c) }, POST: { scope: 'requests:write', run: (c) => this.create(c) } } },
      { pattern: /^\/api\/requests\/([^/]+)$/, methods: { GET: { scope: 'requests:read', run: (c) => this.get(c) } } },
      { pattern: /^\/api\/requests\/([^/]+)\/decision$/, methods: { POST: { scope: 'requests:decide', run: (c) => this.decide(c) } } },
      { pattern: /^\/api\/spend$/, methods: { GET: { scope: 'requests:read', run: (c) => this.spend(c) } } },
      ...(d.tasks ? [{ pattern: /^\/api\/tasks$/, methods: { POST: { scope: 'tasks:run' as const, run: (c: Call) => this.task(c) } } }] : []),
    ];
  }

  /** Whether this server answers `pathname` here. */
  owns(pathname: string): boolean {
    return pathname === '/api' || pathname.startsWith('/api/');
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    try {
      const route = this.routes.find((r) => r.pattern.test(url.pathname));
      if (!route) throw new HttpError(404, `nothing at ${url.pathname.slice(0, 200)} (the API has /api/requests, /api/requests/<id>, /api/requests/<id>/decision, /api/spend)`);
      const handler = route.methods[(req.method === 'HEAD' ? 'GET' : req.method) as 'GET' | 'POST'];
      if (!handler) throw new HttpError(405, `${String(req.method).slice(0, 20)} is not allowed here`, { Allow: Object.keys(route.methods).join(', ') });
      let params: string[];
      try {
        params = (url.pathname.match(route.pattern) ?? []).slice(1).map((s) => decodeURIComponent(s));
      } catch {
        throw new HttpError(400, 'malformed percent-encoding in the path', {}, 'path');
      }
      const token = this.authenticate(req);
      if (!scopeAllows(token.scopes, handler.scope)) throw new HttpError(403, `token "${token.name}" lacks the scope ${handler.scope} (it has ${token.scopes.join(', ')}); make one with \`d8 tokens create --name <app> --scope ${handler.scope}\``);
      const wait = this.limiter.take(token.id);
      if (wait > 0) throw new HttpError(429, `rate limit of ${this.d.config.requestsApi?.ratePerMinute ?? 120} requests per minute for token "${token.name}" reached; retry in ${Math.ceil(wait / 1000)} s (d8:requestsApi.ratePerMinute)`, { 'Retry-After': String(Math.ceil(wait / 1000)) });
      await handler.run({ req, res, url, params, token });
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  private authenticate(req: IncomingMessage): ApiTokenInfo {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(String(req.headers.authorization ?? ''));
    const token = m ? this.d.store.tokens.verify(m[1], this.now()) : null;
    if (token) return token;
    const who = clientAddress(req, this.d.trustProxy);
    const wait = this.authFailures.fail(who);
    this.d.logger.warn({ client: who, path: (req.url ?? '').split('?')[0].slice(0, 200), given: m ? 'unknown or revoked token' : 'no bearer token' }, 'requests API: authentication failed');
    if (wait > 0) throw new HttpError(429, `too many failed authentications from ${who}; try again in ${Math.ceil(wait / 1000)} s`, { 'Retry-After': String(Math.ceil(wait / 1000)) });
    throw new HttpError(401, m ? 'unknown or revoked API token' : 'send an API token as "Authorization: Bearer <token>" (make one with `d8 tokens create --name <app>`)', { 'WWW-Authenticate': 'Bearer realm="d8-api"' });
  }

  private async create(c: Call): Promise<void> {
    const body = await readJsonObject(c.req, BODY_LIMIT);
    const p = ApiCreateRequestSchema.safeParse(body);
    if (!p.success) throw fieldError(p.error, 'request');
    const r = this.mapErrors(() => fileRequest(this.d.store, this.d.config, p.data, `api:${c.token.name}`, this.now));
    this.d.logger.info({ request_id: r.id, type: r.type, token: c.token.name, status: r.status, auto_rule: r.auto_rule }, `requests API: ${c.token.name} filed ${r.id}${r.auto_rule ? ` (auto-approved by ${r.auto_rule})` : ''}`);
    sendJson(c.res, 201, r, { Location: `/api/requests/${r.id}` });
  }

  /** Newest first, a page at a time: `next_before` is the `before` of the next (older) page. */
  private list(c: Call): void {
    const q = ListRequestsQuerySchema.safeParse(Object.fromEntries(['status', 'limit', 'before'].flatMap((k) => {
      const v = c.url.searchParams.get(k);
      return v === null ? [] : [[k, v]];
    })));
    if (!q.success) {
      const field = String(q.error.issues[0].path[0] ?? 'query');
      const why = field === 'status' ? `must be one of ${RequestStatusSchema.options.join(', ')}` : q.error.issues[0].message;
      throw new HttpError(400, `invalid query: ${field} ${why}`, {}, field);
    }
    const { status, limit, before } = q.data;
    sendJson(c.res, 200, this.d.store.requests.page({ ...(status ? { status } : {}), limit, ...(before ? { before } : {}) }));
  }

  private async get(c: Call): Promise<void> {
    const id = this.requestId(c.params[0]);
    const waitRaw = c.url.searchParams.get('wait');
    const wait = waitRaw === null ? 0 : Number(waitRaw);
    if (!Number.isFinite(wait) || wait < 0 || wait > MAX_WAIT_S) throw new HttpError(400, `invalid query: wait must be a number of seconds from 0 to ${MAX_WAIT_S}`, {}, 'wait');
    if (wait > 0 && this.waits.count >= this.waits.max) throw new HttpError(429, `${this.waits.max} callers are already waiting; retry shortly`, { 'Retry-After': '5' });
    const gone = new AbortController();
    c.res.once('close', () => gone.abort());
    const r = await this.mapErrorsAsync(() => this.waits.wait(id, wait * 1000, gone.signal));
    if (!gone.signal.aborted) sendJson(c.res, 200, r);
  }

  private async decide(c: Call): Promise<void> {
    const id = this.requestId(c.params[0]);
    const body = await readJsonObject(c.req, BODY_LIMIT);
    const p = DecisionInputSchema.safeParse(body);
    if (!p.success) throw fieldError(p.error, 'decision');
    const { decision, note } = p.data;
    const r = this.mapErrors(() => decideRequest(this.d.store.requests, id, decision, note ?? '', `API token ${c.token.name}`));
    this.d.logger.info({ request_id: id, decision, token: c.token.name }, `requests API: ${c.token.name} ${DECISION_PAST[decision]} ${id}`);
    if (r.status === 'APPROVED') checkBudgets(this.d.store, this.d.config.budgets ?? {}, this.d.config.stack, this.now());
    sendJson(c.res, 200, r);
  }

  private spend(c: Call): void {
    const raw = c.url.searchParams.get('month');
    const m = raw === null ? { success: true as const, data: monthOf(this.now()) } : MonthSchema.safeParse(raw);
    if (!m.success) throw new HttpError(400, 'invalid query: month must be a month like 2026-11', {}, 'month');
    sendJson(c.res, 200, spendReport(this.d.store.spend, this.d.config.budgets ?? {}, m.data));
  }

  private async task(c: Call): Promise<void> {
    const body = await readJsonObject(c.req, LIMITS.maxBodyBytes);
    const p = RoutedTaskRequestSchema.safeParse(body);
    if (!p.success) throw fieldError(p.error, 'task');
    try {
      const r = await this.d.tasks!.run(p.data);
      this.d.logger.info({ slave: r.slave, token: c.token.name, exit_code: r.result.exit_code }, `tasks API: ${c.token.name}'s task ran on ${r.slave}`);
      sendJson(c.res, 200, r);
    } catch (err) {
      if (err instanceof NoFitError) return sendJson(c.res, 409, { error: err.message, needs: err.needs, unfit: err.unfit });
      if (err instanceof AllBusyError) throw new HttpError(503, err.message, { 'Retry-After': '10' });
      if (err instanceof TaskFailedError) return sendJson(c.res, 502, { error: err.message, slave: err.slave, failed: err.failed });
      throw err;
    }
  }

  private requestId(raw: string): string {
    const p = RequestIdSchema.safeParse(raw);
    if (!p.success) throw new HttpError(400, `"${raw.slice(0, 80)}" is not a request id (they look like req-0001)`, {}, 'id');
    return p.data;
  }

  private mapErrors<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw requestErrorToHttp(err);
    }
  }

  private async mapErrorsAsync<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw requestErrorToHttp(err);
    }
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const e = err instanceof HttpError ? err : new HttpError(500, 'internal error; see the master\'s log');
    if (!(err instanceof HttpError)) this.d.logger.error({ err: (err as Error)?.message, path: (req.url ?? '').split('?')[0].slice(0, 200) }, 'requests API handler failed');
    if (res.headersSent) {
      res.end();
      return;
    }
    if (e.status === 413) req.resume();
    sendJson(res, e.status, e.field ? { error: e.message, field: e.field } : { error: e.message }, e.headers);
  }
}
