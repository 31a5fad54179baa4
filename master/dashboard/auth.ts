/**
 * Who may use the dashboard. A loopback bind (127.0.0.1, ::1, localhost) is open to whoever can
 * reach it, like `d8 status` is to whoever can read D8_HOME. Any other bind needs the dashboard
 * token, exchanged once for a session cookie. Every state-changing request carries the session's
 * CSRF token, whatever the bind: a web page in the same browser can POST to 127.0.0.1 too.
 */
import crypto from 'crypto';
import path from 'path';
import { d8Home, ensurePrivateDir } from '../../core/paths';
import { tokenFile, weakTokenReason } from '../../core/tokens';

export const LOOPBACK_BINDS = new Set(['127.0.0.1', '::1', 'localhost']);

export function isLoopbackBind(bind: string): boolean {
  return LOOPBACK_BINDS.has(bind.trim().toLowerCase());
}

export const TOKEN_FILE_NAME = 'dashboard-token';

export interface DashboardToken {
  token: string;
  /** Where it came from, for the one start-up line (never the token itself). */
  source: 'env' | 'file' | 'generated';
  file: string | null;
}

export class DashboardTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DashboardTokenError';
  }
}

/** D8_DASHBOARD_TOKEN, else D8_HOME/dashboard-token (generated on first use, mode 0600). */
export function resolveDashboardToken(env: NodeJS.ProcessEnv = process.env): DashboardToken {
  const fromEnv = env.D8_DASHBOARD_TOKEN?.trim();
  if (fromEnv) {
    const weak = weakTokenReason(fromEnv);
    if (weak) throw new DashboardTokenError(`D8_DASHBOARD_TOKEN is unusable (${weak}): use a long random value, e.g. \`openssl rand -base64 32\``);
    return { token: fromEnv, source: 'env', file: null };
  }
  const file = path.join(ensurePrivateDir(d8Home(env)), TOKEN_FILE_NAME);
  const t = tokenFile(file);
  return { token: t.token, source: t.generated ? 'generated' : 'file', file };
}

export interface Session {
  id: string;
  csrf: string;
  expiresAt: number;
}

/** In-memory sessions: a restart of the master logs everyone out, which is fine for a fleet console. */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly ttlMs = 12 * 3600_000, private readonly max = 1000, private readonly now: () => number = Date.now) {}

  create(): Session {
    this.prune();
    if (this.sessions.size >= this.max) {
      const oldest = [...this.sessions.values()].sort((a, b) => a.expiresAt - b.expiresAt)[0];
      this.sessions.delete(oldest.id);
    }
    const s: Session = { id: crypto.randomBytes(32).toString('base64url'), csrf: crypto.randomBytes(24).toString('base64url'), expiresAt: this.now() + this.ttlMs };
    this.sessions.set(s.id, s);
    return s;
  }

  get(id: string | undefined): Session | null {
    if (!id) return null;
    const s = this.sessions.get(id);
    if (!s) return null;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return null;
    }
    return s;
  }

  destroy(id: string): void {
    this.sessions.delete(id);
  }

  private prune(): void {
    const t = this.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= t) this.sessions.delete(id);
  }
}

/**
 * Failed logins per client: `limit` failures in `windowMs` lock the client out until the window
 * passes. A global cap stops a spread-out guess from many addresses.
 */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();
  private global: number[] = [];

  constructor(
    private readonly limit = 5,
    private readonly windowMs = 15 * 60_000,
    private readonly globalLimit = 50,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds until `client` may try again, or 0. */
  retryAfterMs(client: string): number {
    const t = this.now();
    const mine = this.recent(this.failures.get(client) ?? [], t);
    this.global = this.recent(this.global, t);
    const blockedBy = [mine.length >= this.limit ? mine : null, this.global.length >= this.globalLimit ? this.global : null]
      .filter((x): x is number[] => x !== null);
    if (!blockedBy.length) return 0;
    return Math.max(...blockedBy.map((list) => list[list.length - (list === mine ? this.limit : this.globalLimit)] + this.windowMs - t));
  }

  fail(client: string): void {
    const t = this.now();
    const mine = this.recent(this.failures.get(client) ?? [], t);
    mine.push(t);
    this.failures.set(client, mine);
    this.global.push(t);
    if (this.failures.size > 10_000) this.failures.clear();
  }

  succeed(client: string): void {
    this.failures.delete(client);
  }

  private recent(list: number[], t: number): number[] {
    return list.filter((x) => x > t - this.windowMs);
  }
}
