/**
 * The notification seam. Alerts are written to the store's outbox first and delivered in order by
 * the dispatcher through one Notifier; `send` resolving means "accepted", throwing means "not
 * delivered, try again later" (a NotifierRetryAfter error asks for a specific delay).
 */
import { z } from 'zod';

export const ALERT_KINDS = [
  'version_mismatch',
  'slave_dead',
  'slave_recovered',
  'update_started',
  'update_done',
  'update_failed',
  'recovery_failed',
  'provisioning_failed',
  'human_request',
  'request_changed',
  'master_version_changed',
] as const;
export const AlertKindSchema = z.enum(ALERT_KINDS);
export type AlertKind = z.infer<typeof AlertKindSchema>;

export const AlertDataSchema = z.object({
  master_commit: z.string().optional(),
  slave_commit: z.string().nullable().optional(),
  drift: z.string().optional(),
  state: z.string().optional(),
  previous_state: z.string().optional(),
  strategy: z.string().nullable().optional(),
  strategies: z.array(z.string()).optional(),
  error_tail: z.string().optional(),
  build_log_path: z.string().nullable().optional(),
  request_id: z.string().optional(),
  request_type: z.string().optional(),
  request_status: z.string().optional(),
  priority: z.string().optional(),
  engine: z.string().optional(),
  attempt: z.number().optional(),
  /** True when this is a reminder of an alert already sent (resend interval). */
  resend: z.boolean().optional(),
}).passthrough();
export type AlertData = z.infer<typeof AlertDataSchema>;

export const AlertSchema = z.object({
  kind: AlertKindSchema,
  stack: z.string().optional(),
  slave: z.string().nullable(),
  /** One line, fit for a notification title. */
  title: z.string(),
  /** Plain text body (may be multi-line). */
  text: z.string(),
  data: AlertDataSchema.default({}),
  created_at: z.string(),
});
export type Alert = z.infer<typeof AlertSchema>;
export type AlertInput = Omit<Alert, 'created_at' | 'data'> & { data?: AlertData; created_at?: string };

export interface Notifier {
  readonly name: string;
  send(alert: Alert): Promise<void>;
  /** Optional: release connections when the daemon stops. */
  close?(): Promise<void>;
}

/** Thrown by a notifier that was told when to try again (e.g. Telegram's retry_after). */
export class NotifierRetryAfter extends Error {
  constructor(message: string, readonly retryAfterMs: number) {
    super(message);
    this.name = 'NotifierRetryAfter';
  }
}
