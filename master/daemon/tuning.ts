/**
 * The daemon's timing knobs. Defaults suit a real fleet; D8_MASTER_TUNING (JSON, validated) lets
 * tests and unusual fleets shorten them without new flags for each.
 */
import { z } from 'zod';

export const TuningSchema = z.object({
  /** Consecutive failed checks before a slave is dead (the first makes it pending). */
  deadAfter: z.number().int().min(1).default(3),
  /** Re-send an alert while a slave stays bad. */
  resendMs: z.number().int().min(1000).default(6 * 3600_000),
  breakerFailures: z.number().int().min(1).default(5),
  breakerOpenMs: z.number().int().min(10).default(60_000),
  concurrency: z.number().int().min(1).max(4096).default(256),
  checkAttempts: z.number().int().min(1).max(10).default(3),
  attemptTimeoutMs: z.number().int().min(50).default(2000),
  checkDeadlineMs: z.number().int().min(100).default(5000),
  retryDelayMs: z.number().int().min(1).default(100),
  recoveryAttempts: z.number().int().min(1).default(3),
  recoveryBackoffMs: z.number().int().min(10).default(60_000),
  recoveryBackoffMaxMs: z.number().int().min(10).default(30 * 60_000),
  /** How long to wait for a slave to come back after a restart or deploy. */
  settleMs: z.number().int().min(100).default(30_000),
  updateBackoffMs: z.number().int().min(10).default(5 * 60_000),
  updateBackoffMaxMs: z.number().int().min(10).default(6 * 3600_000),
  /** On SIGTERM, how long an in-flight deploy may finish before it is marked interrupted. */
  stopGraceMs: z.number().int().min(0).default(60_000),
  /** How often the daemon looks for control commands (d8 retry) and approved requests. */
  controlPollMs: z.number().int().min(50).default(1000),
}).strict();
export type Tuning = z.infer<typeof TuningSchema>;

export class TuningError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TuningError';
  }
}

export function tuningFromEnv(env: NodeJS.ProcessEnv = process.env): Tuning {
  const raw = env.D8_MASTER_TUNING;
  if (!raw || !raw.trim()) return TuningSchema.parse({});
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new TuningError(`D8_MASTER_TUNING is not valid JSON: ${(err as Error).message}`);
  }
  const p = TuningSchema.safeParse(json);
  if (!p.success) {
    const i = p.error.issues[0];
    throw new TuningError(`D8_MASTER_TUNING: ${i.path.join('.') || (i.code === 'unrecognized_keys' ? i.keys.join(', ') : '(root)')} ${i.message}`);
  }
  return p.data;
}
