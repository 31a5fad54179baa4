/**
 * The vocabulary of a supervised slave, shared by the master's checker, its store, alerts and the
 * dashboard: its state (Uptime-Kuma style) and the drift of its commit against the master's.
 */
import { z } from 'zod';

/**
 * `untrusted`: the agent's address answers with a certificate other than the pinned one (a possible
 * impersonation): nothing is sent to it, it is neither retried towards `dead` nor recovered.
 */
export const SLAVE_STATES = ['unknown', 'healthy', 'version_mismatch', 'pending', 'dead', 'untrusted'] as const;
export const SlaveStateSchema = z.enum(SLAVE_STATES);
export type SlaveState = z.infer<typeof SlaveStateSchema>;

/** After SaltStack's manage.versions: equal, behind, ahead, diverged, unknown (no commit or not in the master's repository). */
export const DRIFT_CLASSES = ['equal', 'behind', 'ahead', 'diverged', 'unknown'] as const;
export const DriftSchema = z.enum(DRIFT_CLASSES);
export type Drift = z.infer<typeof DriftSchema>;

/**
 * Issue 25: the channel the master holds to a slave's agent (master/channel), as the daemon last
 * recorded it (on open, on loss, after each sweep): `d8 status`, /metrics and the API show it.
 */
export const ChannelStatusSchema = z.object({
  connected: z.boolean(),
  /** When the open channel opened (null while down). */
  since: z.string().nullable(),
  last_heartbeat_at: z.string().nullable(),
  /** Channels opened after the first since the daemon started. */
  reconnects: z.number().int().nonnegative(),
  /** Why the last attempt or channel ended. */
  last_error: z.string().nullable(),
  updated_at: z.string(),
});
export type ChannelStatus = z.infer<typeof ChannelStatusSchema>;
