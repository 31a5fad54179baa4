/**
 * Per-slave circuit breaker: after `failureThreshold` consecutive failures it opens and the slave is
 * not contacted; after `openMs` one probe is let through (half-open): success closes it, failure
 * opens it again. Pure: the clock is passed in.
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  failureThreshold: number;
  openMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failureThreshold: 5, openMs: 60_000 };

export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | null = null;
  private probing = false;

  constructor(private readonly opts: BreakerOptions = DEFAULT_BREAKER) {}

  state(now: number): BreakerState {
    if (this.openedAt === null) return 'closed';
    return now - this.openedAt >= this.opts.openMs ? 'half_open' : 'open';
  }

  /** Whether a request may go out now (in half-open, only one probe at a time). */
  allow(now: number): boolean {
    const s = this.state(now);
    if (s === 'closed') return true;
    if (s === 'open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.openedAt = null;
    this.probing = false;
  }

  failure(now: number): void {
    this.failures++;
    const wasProbe = this.probing;
    this.probing = false;
    if (wasProbe || this.failures >= this.opts.failureThreshold) this.openedAt = now;
  }

  /** A person asked for a retry: forget the open state (the next check goes out). */
  reset(): void {
    this.success();
  }

  consecutiveFailures(): number {
    return this.failures;
  }
}
