/**
 * Delivers the outbox in order through one Notifier. An alert is removed only after the notifier
 * accepted it; a failure (Telegram down, rate limit) is retried with backoff, so nothing is lost
 * and nothing is reordered. Alerts enqueued by another process (a CLI) are found by polling.
 */
import crypto from 'crypto';
import type { Logger } from '../../core/logger';
import { backoffDelay, type BackoffOptions } from '../backoff';
import type { AlertOutbox } from '../store/outbox';
import { NotifierRetryAfter, type Notifier } from './notifier';

export interface DispatcherOptions {
  pollMs?: number;
  backoff?: BackoffOptions;
  /** How long a notifier may take before another process may take the alert over. */
  leaseMs?: number;
}

export class AlertDispatcher {
  private readonly owner = `${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = true;
  private wakeRequested = false;
  private unsubscribe: (() => void) | null = null;
  private readonly pollMs: number;
  private readonly backoff: BackoffOptions;
  private readonly leaseMs: number;

  constructor(
    private readonly outbox: AlertOutbox,
    private readonly notifier: Notifier,
    private readonly logger: Logger,
    opts: DispatcherOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 1000;
    // Capped at a minute: after an outage, queued alerts should arrive soon after Telegram is back.
    this.backoff = opts.backoff ?? { baseMs: 2000, maxMs: 60_000, jitter: 0.2 };
    this.leaseMs = opts.leaseMs ?? 60_000;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.outbox.onEnqueue(() => this.wake());
    this.wake();
  }

  /** Stops polling; an in-flight send finishes (bounded by `timeoutMs`). */
  async stop(timeoutMs = 5000): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    const deadline = Date.now() + timeoutMs;
    while (this.running && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.wakeRequested = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.drain(), 0);
  }

  /** Delivers every due alert; resolves when the outbox is empty or its head is not due yet. */
  async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        this.wakeRequested = false;
        const row = this.outbox.leaseHead(this.owner, this.leaseMs);
        if (!row) break;
        if (row.alert === null) {
          this.logger.warn({ outbox_id: row.id, err: row.invalid }, 'an outbox row is not a readable alert (written by another version?): set aside, not delivered');
          this.outbox.markSkipped(row.id);
          continue;
        }
        try {
          await this.notifier.send(row.alert);
          this.outbox.markDelivered(row.id, this.notifier.name);
        } catch (err) {
          const delay = err instanceof NotifierRetryAfter
            ? err.retryAfterMs
            : backoffDelay(row.attempts + 1, this.backoff);
          this.outbox.markFailed(row.id, (err as Error).message ?? String(err), Date.now() + delay);
          this.logger.warn({ alert: row.alert.kind, attempts: row.attempts + 1, retry_in_ms: delay, err: (err as Error).message },
            `notifier ${this.notifier.name} did not accept an alert; it stays in the outbox`);
          break;
        }
        if (this.stopped) break;
      }
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'alert dispatcher error (will retry)');
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    let wait = this.pollMs;
    try {
      const due = this.outbox.headDueAt();
      if (this.wakeRequested) wait = 0;
      else if (due !== null) wait = Math.min(this.pollMs, Math.max(0, due - Date.now()));
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'alert dispatcher cannot read the outbox (will retry)');
    }
    this.timer = setTimeout(() => void this.drain(), wait);
  }
}
