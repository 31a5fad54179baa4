/** Exponential backoff with a cap and optional jitter (pure; `random` injectable for tests). */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  factor?: number;
  /** 0..1: fraction of the delay randomised (0 = deterministic). */
  jitter?: number;
}

export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const n = Math.max(0, attempt - 1);
  const raw = Math.min(opts.maxMs, opts.baseMs * Math.pow(opts.factor ?? 2, n));
  const jitter = opts.jitter ?? 0;
  if (jitter <= 0) return Math.round(raw);
  const spread = raw * jitter;
  return Math.round(Math.min(opts.maxMs, raw - spread / 2 + random() * spread));
}
