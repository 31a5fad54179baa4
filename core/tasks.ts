/**
 * Routed tasks (issue 18): a task sent to "whichever slave fits" instead of a named one. One
 * contract for `d8 exec --any` and `POST /api/tasks`.
 */
import { z } from 'zod';
import { ExecuteRequestSchema, ExecuteResponseSchema } from './protocol';

/** Capabilities the agent reports; anything else in `needs` is a slave label from the stack config. */
export const CAPABILITIES = ['docker', 'venv', 'native', 'python'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export const NeedSchema = z.string().regex(/^[a-z0-9][a-z0-9._:-]{0,62}$/, 'must be a capability (docker, venv, native, python, arch:<arch>) or a slave label');

/** POST /api/tasks: the agent's execute request plus what the slave must have. */
export const RoutedTaskRequestSchema = ExecuteRequestSchema.extend({
  needs: z.array(NeedSchema).max(20).default([]),
  /** Only for idempotent tasks: a slave that fails mid-task is followed by the next fit one. */
  retry_on_other: z.boolean().default(false),
}).strict();
export type RoutedTaskRequest = z.input<typeof RoutedTaskRequestSchema>;

export const RoutedTaskResultSchema = z.object({
  slave: z.string(),
  /** Why this slave: it fits, and its load and latency against the other fit ones. */
  why: z.string(),
  result: ExecuteResponseSchema,
  /** Slaves that failed mid-task before this one (with retry_on_other). */
  failed: z.array(z.object({ slave: z.string(), error: z.string() })).default([]),
});
export type RoutedTaskResult = z.infer<typeof RoutedTaskResultSchema>;

/** Why one slave does not fit, for the 409 / exit code when none does. */
export const UnfitSchema = z.object({ slave: z.string(), missing: z.array(z.string()) });
export type Unfit = z.infer<typeof UnfitSchema>;
