/**
 * When the next sweep runs and what it checks (pure; the clock is passed in). Uptime-Kuma style: a
 * full sweep every interval, and while a slave is failing (pending) it alone is re-checked at the
 * shorter retry interval, so `dead` is declared within a few retries instead of a few intervals. A
 * wake-up (the master's own HEAD moved) runs a full sweep now; a slave whose channel closed
 * (master/channel) is re-checked now, before the full sweep that may be due.
 */
export interface ScheduleInput {
  now: number;
  /** Start of the last full sweep; null before the first. */
  lastFullAt: number | null;
  intervalMs: number;
  retryMs: number;
  /** Whether a slave's last check failed and it is not yet dead (pending). */
  failing: boolean;
  /** Something asked for a full sweep now. */
  wake: boolean;
  /** A slave asked to be re-checked now (its channel closed). */
  urgent?: boolean;
}

export type SweepPlan = { kind: 'full' | 'retry'; at: number };

export function nextSweep(i: ScheduleInput): SweepPlan {
  if (i.wake || i.lastFullAt === null) return { kind: 'full', at: i.now };
  if (i.urgent) return { kind: 'retry', at: i.now };
  const fullAt = Math.max(i.now, i.lastFullAt + i.intervalMs);
  if (i.failing && i.now + i.retryMs < fullAt) return { kind: 'retry', at: i.now + i.retryMs };
  return { kind: 'full', at: fullAt };
}
