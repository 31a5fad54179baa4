/**
 * Bearer-token checks and the per-address lockout after repeated failures. The lockout limits noise
 * and CPU from wrong tokens; it never refuses a valid one (guessing a strong token is not the threat,
 * and anything sharing the master's address, a NAT or the master's own host, must not cut it off).
 */
import { sameSecret } from '../core/tokens';

/**
 * Compares a presented token with the accepted ones in constant time (core/tokens.ts): every one is
 * compared, so timing does not say which matched. Two are accepted only during a rotation.
 */
export class TokenChecker {
  private tokens: string[];
  constructor(tokens: string | string[]) {
    this.tokens = typeof tokens === 'string' ? [tokens] : [...tokens];
  }
  matches(presented: string): boolean {
    let ok = false;
    for (const t of this.tokens) ok = sameSecret(t, presented) || ok;
    return ok;
  }
  get accepted(): readonly string[] {
    return this.tokens;
  }
  replace(tokens: string[]): void {
    this.tokens = [...tokens];
  }
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m ? m[1] : null;
}

export interface LockoutOptions {
  /** Failures within `windowMs` that lock an address out. */
  maxFailures: number;
  windowMs: number;
  lockoutMs: number;
  /** Addresses tracked at most (oldest are forgotten first), so a flood cannot exhaust memory. */
  maxTracked?: number;
  now?: () => number;
}

interface Entry {
  failures: number;
  windowStart: number;
  lockedUntil: number;
}

export type AuthDecision = { kind: 'ok' } | { kind: 'invalid' } | { kind: 'locked'; retryAfterMs: number };

/** Counts auth failures per remote address; too many within the window lock the address out. */
export class AuthLockout {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly maxTracked: number;

  constructor(private readonly opts: LockoutOptions) {
    this.now = opts.now ?? Date.now;
    this.maxTracked = opts.maxTracked ?? 10_000;
  }

  /**
   * The answer to one authentication attempt: a valid token is always admitted; a wrong or missing
   * one is refused as locked while the address is locked out (not counted again, so the lockout is
   * not extended), otherwise counted and refused as invalid.
   */
  admit(address: string, valid: boolean): AuthDecision {
    if (valid) {
      this.recordSuccess(address);
      return { kind: 'ok' };
    }
    const locked = this.lockedFor(address);
    if (locked > 0) return { kind: 'locked', retryAfterMs: locked };
    this.recordFailure(address);
    return { kind: 'invalid' };
  }

  /** Milliseconds left on the address's lockout, or 0 when it may try. */
  lockedFor(address: string): number {
    const e = this.entries.get(address);
    if (!e) return 0;
    const left = e.lockedUntil - this.now();
    return left > 0 ? left : 0;
  }

  /** Records a failure; returns true when this failure locked the address out. */
  recordFailure(address: string): boolean {
    const now = this.now();
    let e = this.entries.get(address);
    if (!e || (e.lockedUntil <= now && now - e.windowStart > this.opts.windowMs)) {
      e = { failures: 0, windowStart: now, lockedUntil: 0 };
      this.entries.delete(address);
      this.entries.set(address, e);
      this.evict();
    }
    e.failures += 1;
    if (e.failures >= this.opts.maxFailures) {
      e.lockedUntil = now + this.opts.lockoutMs;
      e.failures = 0;
      e.windowStart = now;
      return true;
    }
    return false;
  }

  recordSuccess(address: string): void {
    const e = this.entries.get(address);
    if (e && e.lockedUntil <= this.now()) this.entries.delete(address);
  }

  get tracked(): number {
    return this.entries.size;
  }

  private evict(): void {
    if (this.entries.size <= this.maxTracked) return;
    const now = this.now();
    for (const [addr, e] of this.entries) {
      if (this.entries.size <= this.maxTracked) break;
      // Maps iterate in insertion order: the oldest windows go first, active lockouts last.
      if (e.lockedUntil <= now) this.entries.delete(addr);
    }
    if (this.entries.size > this.maxTracked) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }
}
