/**
 * The dashboard's HTTP server (node:http, like the agent: a dozen routes need no framework).
 * Order per request: Host check (loopback binds refuse foreign Host names, against DNS rebinding),
 * route and method, session (made on first visit on loopback, by login elsewhere), CSRF and Origin
 * on every POST, then the handler. Any error becomes a status and a message; none reaches the daemon.
 */
import http, { type IncomingMessage, type ServerResponse } from 'http';
import type { AddressInfo } from 'net';
import type { Logger } from '../../core/logger';
import { LoginLimiter, SessionStore, isLoopbackBind, type Session } from './auth';
import { sameSecret } from '../../core/tokens';
import { APP_CSS, APP_JS } from './assets';
import { HttpError, clientAddress, parseCookies, readForm, redirect, send, sendHtml, sendJson } from './http';
import type { LiveHub } from './live';
import type { DashboardMetrics } from './metrics';
import type { DashboardPages } from './pages';
import type { RolloutVerb } from '../rollout/control';
import { layout, loginPage, mainContent, messagePage, type Page, type PageChrome } from './views/layout';

export const SESSION_COOKIE = 'd8_session';
const BODY_LIMIT = 16 * 1024;

export interface ServerDeps {
  bind: string;
  port: number;
  trustProxy: boolean;
  /** Required off loopback; null on a loopback bind. */
  token: string | null;
  tokenHint: string;
  stack: string;
  masterCommit: () => string | null;
  pages: DashboardPages;
  metrics: DashboardMetrics;
  live: LiveHub;
  logger: Logger;
  sessions?: SessionStore;
  limiter?: LoginLimiter;
  /** The token-authenticated API under /api/ (master/api), outside the sessions and CSRF of the pages. */
  api?: { owns(pathname: string): boolean; handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> };
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: string[];
  session: Session | null;
  /** Set-Cookie of a session made for this request. */
  cookie: string | null;
  /** X-CSRF-Token, for callers that send it as a header instead of the form field. */
  csrfHeader?: string;
}

type Handler = (c: Ctx) => Promise<void> | void;
interface Route { pattern: RegExp; methods: Partial<Record<'GET' | 'POST', Handler>>; open?: boolean }

const FLASH = new WeakMap<Session, { ok: boolean; text: string }>();

export class DashboardServer {
  readonly http: http.Server;
  private readonly loopback: boolean;
  private readonly sessions: SessionStore;
  private readonly limiter: LoginLimiter;
  private readonly routes: Route[];

  constructor(private readonly d: ServerDeps) {
    this.loopback = isLoopbackBind(d.bind);
    if (!this.loopback && !d.token) throw new Error('a dashboard bound off loopback needs a token');
    this.sessions = d.sessions ?? new SessionStore();
    this.limiter = d.limiter ?? new LoginLimiter();
    const p = d.pages;
    this.routes = [
      { pattern: /^\/assets\/app\.css$/, open: true, methods: { GET: (c) => send(c.res, 200, 'text/css; charset=utf-8', APP_CSS, { 'Cache-Control': 'public, max-age=300' }) } },
      { pattern: /^\/assets\/app\.js$/, open: true, methods: { GET: (c) => send(c.res, 200, 'text/javascript; charset=utf-8', APP_JS, { 'Cache-Control': 'public, max-age=300' }) } },
      { pattern: /^\/favicon\.ico$/, open: true, methods: { GET: (c) => { c.res.writeHead(204); c.res.end(); } } },
      { pattern: /^\/login$/, open: true, methods: { GET: (c) => this.loginForm(c), POST: (c) => this.login(c) } },
      { pattern: /^\/logout$/, methods: { POST: (c) => this.logout(c) } },
      { pattern: /^\/$/, methods: { GET: async (c) => this.page(c, await p.fleet(c.session?.csrf ?? '')) } },
      { pattern: /^\/rollout\/(pause|resume|abort)$/, methods: { POST: (c) => this.act(c, '/', (f) => p.moveRollout(c.params[0] as RolloutVerb, f)) } },
      { pattern: /^\/slaves\/([^/]+)$/, methods: { GET: async (c) => this.page(c, await p.slavePage(c.params[0], c.session!.csrf)) } },
      { pattern: /^\/slaves\/([^/]+)\/(retry|update)$/, methods: { POST: (c) => this.act(c, `/slaves/${encodeURIComponent(c.params[0])}`, (f) => p.startAction(c.params[1] as 'retry' | 'update', c.params[0], f)) } },
      { pattern: /^\/slaves\/([^/]+)\/deploys\/([^/]+)\/log$/, methods: { GET: (c) => this.page(c, p.buildLog(c.params[0], c.params[1])) } },
      { pattern: /^\/requests$/, methods: { GET: (c) => this.page(c, p.requests(c.session!.csrf, c.url.searchParams)) } },
      { pattern: /^\/requests\/([^/]+)\/([^/]+)$/, methods: { POST: (c) => this.act(c, '/requests', (f) => p.decide(c.params[0], c.params[1], f)) } },
      { pattern: /^\/events$/, methods: { GET: (c) => this.page(c, p.events(c.url.searchParams)) } },
      { pattern: /^\/live$/, methods: { GET: (c) => d.live.open(c.req, c.res) } },
      { pattern: /^\/metrics$/, methods: { GET: async (c) => { const m = await d.metrics.exposition(); send(c.res, 200, m.contentType, m.text); } } },
    ];
    this.http = http.createServer((req, res) => void this.handle(req, res));
    this.http.headersTimeout = 15_000;
    this.http.requestTimeout = 30_000;
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(err);
      this.http.once('error', onError);
      this.http.listen(this.d.port, this.d.bind === 'localhost' ? '127.0.0.1' : this.d.bind, () => {
        this.http.removeListener('error', onError);
        this.http.on('error', (err) => this.d.logger.error({ err: err.message }, 'dashboard server error'));
        resolve(this.http.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    let c: Ctx | null = null;
    try {
      const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
      this.checkHost(req);
      if (this.d.api?.owns(url.pathname)) return await this.d.api.handle(req, res, url);
      const route = this.routes.find((r) => r.pattern.test(url.pathname));
      if (!route) throw new HttpError(404, `nothing at ${url.pathname}`);
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      const handler = route.methods[method as 'GET' | 'POST'];
      if (!handler) throw new HttpError(405, `${req.method} is not allowed here`, { Allow: Object.keys(route.methods).join(', ') });
      let params: string[];
      try {
        params = (url.pathname.match(route.pattern) ?? []).slice(1).map((s) => decodeURIComponent(s));
      } catch {
        throw new HttpError(400, 'malformed percent-encoding in the path');
      }
      c = { req, res, url, params, session: null, cookie: null };
      if (!route.open) this.authenticate(c, url.pathname === '/metrics');
      if (method === 'POST' && url.pathname !== '/login') this.checkCsrfOrigin(c);
      if (c.cookie) res.setHeader('Set-Cookie', c.cookie);
      await handler(c);
    } catch (err) {
      this.fail(req, res, err, c);
    } finally {
      this.d.logger.debug({ method: req.method, path: (req.url ?? '').split('?')[0], status: res.statusCode, ms: Date.now() - started }, 'dashboard request');
    }
  }

  /** On loopback only the loopback names are accepted as Host: a rebinding DNS name is refused. */
  private checkHost(req: IncomingMessage): void {
    if (!this.loopback) return;
    const host = String(req.headers.host ?? '').toLowerCase();
    const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(name)) {
      throw new HttpError(421, `this dashboard answers to 127.0.0.1, localhost or [::1] only (Host was "${host.slice(0, 100)}")`);
    }
  }

  private authenticate(c: Ctx, metrics: boolean): void {
    const cookieId = parseCookies(c.req.headers.cookie)[SESSION_COOKIE];
    c.session = this.sessions.get(cookieId);
    if (c.session) return;
    if (this.loopback) {
      // A session (for its CSRF token) only for a page; a scraper or an event stream needs none,
      // and must not crowd browsers' sessions out of the store.
      if (c.req.method !== 'POST' && !metrics && c.url.pathname !== '/live') {
        c.session = this.sessions.create();
        c.cookie = this.cookie(c.req, c.session.id);
      }
      return;
    }
    if (metrics) {
      const m = /^Bearer\s+(\S+)$/i.exec(String(c.req.headers.authorization ?? ''));
      if (m && sameSecret(m[1], this.d.token!)) return;
      throw new HttpError(401, 'send the dashboard token as "Authorization: Bearer <token>" (Prometheus: authorization.credentials_file)', { 'WWW-Authenticate': 'Bearer realm="d8"' });
    }
    throw new HttpError(401, 'log in with the dashboard token');
  }

  private checkCsrfOrigin(c: Ctx): void {
    const origin = c.req.headers.origin;
    if (origin !== undefined && origin !== `http://${c.req.headers.host}` && origin !== `https://${c.req.headers.host}`) {
      throw new HttpError(403, `cross-site request refused (Origin ${String(origin).slice(0, 100)})`);
    }
    if (!c.session) throw new HttpError(403, 'no session: reload the page and try again');
    // The token itself is checked once the body is read (form posts carry it as _csrf).
    const header = c.req.headers['x-csrf-token'];
    c.csrfHeader = typeof header === 'string' ? header : undefined;
  }

  private async form(c: Ctx): Promise<Record<string, string>> {
    const f = await readForm(c.req, BODY_LIMIT);
    const given = c.csrfHeader ?? f._csrf;
    if (!c.session || !given || !sameSecret(given, c.session.csrf)) throw new HttpError(403, 'missing or wrong CSRF token: reload the page and try again');
    return f;
  }

  private cookie(req: IncomingMessage, value: string, maxAge?: number): string {
    const secure = this.d.trustProxy && String(req.headers['x-forwarded-proto'] ?? '').split(',')[0].trim() === 'https';
    return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}${maxAge !== undefined ? `; Max-Age=${maxAge}` : ''}`;
  }

  private chrome(c: Ctx): PageChrome {
    return { stack: this.d.stack, masterCommit: this.d.masterCommit(), csrf: c.session?.csrf ?? '', loggedIn: !this.loopback };
  }

  private page(c: Ctx, page: Page): void {
    // A live refresh (fragment) never takes the flash: one may race the redirect after a POST.
    if (c.req.headers['x-d8-fragment'] === '1') return sendHtml(c.res, 200, mainContent(page));
    const flash = c.session ? FLASH.get(c.session) : undefined;
    if (flash && c.session) {
      FLASH.delete(c.session);
      page = { ...page, flash };
    }
    sendHtml(c.res, 200, layout(this.chrome(c), page));
  }

  /** A POST: read the form (CSRF), run `fn`, then JSON for scripts or a redirect with a flash for a browser. */
  private async act(c: Ctx, back: string, fn: (form: Record<string, string>) => string): Promise<void> {
    const form = await this.form(c);
    const message = fn(form);
    if (wantsJson(c.req)) return sendJson(c.res, 200, { ok: true, message });
    FLASH.set(c.session!, { ok: true, text: message });
    redirect(c.res, back);
  }

  private loginForm(c: Ctx): void {
    if (this.loopback) return redirect(c.res, '/');
    sendHtml(c.res, 200, loginPage({ tokenHint: this.d.tokenHint }));
  }

  private async login(c: Ctx): Promise<void> {
    if (this.loopback) return redirect(c.res, '/');
    const origin = c.req.headers.origin;
    if (origin !== undefined && origin !== `http://${c.req.headers.host}` && origin !== `https://${c.req.headers.host}`) {
      throw new HttpError(403, 'cross-site login refused');
    }
    const who = clientAddress(c.req, this.d.trustProxy);
    const wait = this.limiter.retryAfterMs(who);
    if (wait > 0) throw new HttpError(429, `too many failed logins; try again in ${Math.ceil(wait / 60_000)} minute(s)`, { 'Retry-After': String(Math.ceil(wait / 1000)) });
    const form = await readForm(c.req, BODY_LIMIT);
    const token = (form.token ?? '').trim();
    if (!token || !sameSecret(token, this.d.token!)) {
      this.limiter.fail(who);
      this.d.logger.warn({ client: who }, 'dashboard: failed login');
      if (wantsJson(c.req)) return sendJson(c.res, 401, { error: 'wrong dashboard token' });
      return sendHtml(c.res, 401, loginPage({ tokenHint: this.d.tokenHint, error: 'That is not the dashboard token.' }));
    }
    this.limiter.succeed(who);
    const s = this.sessions.create();
    this.d.logger.info({ client: who }, 'dashboard: login');
    if (wantsJson(c.req)) return sendJson(c.res, 200, { ok: true, csrf: s.csrf }, { 'Set-Cookie': this.cookie(c.req, s.id) });
    redirect(c.res, '/', { 'Set-Cookie': this.cookie(c.req, s.id) });
  }

  private async logout(c: Ctx): Promise<void> {
    await this.form(c);
    this.sessions.destroy(c.session!.id);
    redirect(c.res, this.loopback ? '/' : '/login', { 'Set-Cookie': this.cookie(c.req, '', 0) });
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown, c: Ctx | null): void {
    const e = err instanceof HttpError ? err : new HttpError(500, 'internal error; see the master\'s log');
    if (!(err instanceof HttpError)) this.d.logger.error({ err: (err as Error)?.message, path: (req.url ?? '').split('?')[0] }, 'dashboard handler failed');
    if (res.headersSent) {
      res.end();
      return;
    }
    if (e.status === 413) req.resume();
    if (wantsJson(req) || (c?.url.pathname === '/metrics')) return sendJson(res, e.status, { error: e.message }, e.headers);
    if (e.status === 401) return sendHtml(res, 401, loginPage({ tokenHint: this.d.tokenHint }), e.headers);
    sendHtml(res, e.status, messagePage(`${e.status} ${http.STATUS_CODES[e.status] ?? 'Error'}`, e.message), e.headers);
  }
}

function wantsJson(req: IncomingMessage): boolean {
  return /application\/json/.test(String(req.headers.accept ?? '')) || /application\/json/.test(String(req.headers['content-type'] ?? ''));
}
