/** Token buckets per key (an API token's id): `perMinute` requests as a burst, refilled evenly. Clock injected. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly perMinute: number, private readonly now: () => number = Date.now, private readonly maxKeys = 10_000) {}

  /** 0 when `key` may go now (and takes one), else the milliseconds until it may. */
  take(key: string): number {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.perMinute, at: t };
    b.tokens = Math.min(this.perMinute, b.tokens + ((t - b.at) * this.perMinute) / 60_000);
    b.at = t;
    if (this.buckets.size >= this.maxKeys && !this.buckets.has(key)) this.buckets.clear();
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 60_000) / this.perMinute);
  }
}

/**
 * Failed authentications per client address: after `limit` in `windowMs` the client gets 429
 * instead of 401 for bad tokens until the window passes. A valid token is never refused by it, so
 * a noisy neighbour on the same address cannot lock a working program out.
 */
export class AuthFailures {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly limit = 30, private readonly windowMs = 5 * 60_000, private readonly now: () => number = Date.now) {}

  /** Records a failure; returns the milliseconds the client must wait, or 0 while under the limit. */
  fail(client: string): number {
    const t = this.now();
    const list = (this.failures.get(client) ?? []).filter((x) => x > t - this.windowMs);
    list.push(t);
    if (this.failures.size > 10_000) this.failures.clear();
    this.failures.set(client, list);
    return list.length > this.limit ? list[list.length - this.limit - 1] + this.windowMs - t : 0;
  }
}
