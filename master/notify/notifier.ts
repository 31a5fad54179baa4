/**
 * The notification seam. Alerts (typed data, core/alerts.ts) are written to the store's outbox first
 * and delivered in order by the dispatcher through one Notifier, which formats them; `send` resolving
 * means "accepted", throwing means "not delivered, try again later" (a NotifierRetryAfter error asks
 * for a specific delay).
 */
import type { Alert } from '../../core/alerts';

export { AlertSchema, ALERT_KINDS, type Alert, type AlertInput, type AlertKind, type AlertOf } from '../../core/alerts';

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
