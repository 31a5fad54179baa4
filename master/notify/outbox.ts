/** The persistent alert outbox (table alerts_outbox): written first, removed only once delivered. */
import type { Db } from '../store/db';
import { nowIso, stmt } from '../store/db';
import { Redactor, environmentSecrets } from '../../core/redact';
import { AlertSchema, type Alert, type AlertInput } from './notifier';

export interface OutboxRow {
  id: number;
  alert: Alert;
  attempts: number;
}

export class AlertOutbox {
  private readonly redactor: Redactor;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly db: Db, secrets: string[] = []) {
    this.redactor = new Redactor([...environmentSecrets(), ...secrets]);
  }

  /** Called after every enqueue in this process (the dispatcher wakes up at once). */
  onEnqueue(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Adds an alert; safe inside a caller's transaction. Secrets are scrubbed before they are stored. */
  enqueue(input: AlertInput, now: number = Date.now()): number {
    const alert = AlertSchema.parse(this.redactor.value({ ...input, data: input.data ?? {}, created_at: input.created_at ?? nowIso(now) }));
    const r = stmt(this.db, 
      'INSERT INTO alerts_outbox (created_at, kind, slave, payload, next_attempt_at) VALUES (?, ?, ?, ?, ?)',
    ).run(alert.created_at, alert.kind, alert.slave, JSON.stringify(alert), nowIso(now));
    for (const l of this.listeners) queueMicrotask(l);
    return Number(r.lastInsertRowid);
  }

  pendingCount(): number {
    return (stmt(this.db, 'SELECT COUNT(*) AS n FROM alerts_outbox').get() as { n: number }).n;
  }

  /**
   * Leases the oldest alert when it is due and nobody else holds it. Delivery is in order: a failing
   * head blocks the ones behind it (an alert that says "recovered" must not overtake "dead").
   */
  leaseHead(owner: string, leaseMs: number, now: number = Date.now()): OutboxRow | null {
    return this.db.transaction((): OutboxRow | null => {
      const row = stmt(this.db, 'SELECT id, payload, attempts, next_attempt_at, lease_owner, lease_until FROM alerts_outbox ORDER BY id LIMIT 1')
        .get() as { id: number; payload: string; attempts: number; next_attempt_at: string; lease_owner: string | null; lease_until: string | null } | undefined;
      if (!row) return null;
      if (row.next_attempt_at > nowIso(now)) return null;
      if (row.lease_owner && row.lease_owner !== owner && row.lease_until && row.lease_until > nowIso(now)) return null;
      stmt(this.db, 'UPDATE alerts_outbox SET lease_owner = ?, lease_until = ? WHERE id = ?').run(owner, nowIso(now + leaseMs), row.id);
      return { id: row.id, alert: AlertSchema.parse(JSON.parse(row.payload)), attempts: row.attempts };
    }).immediate();
  }

  /** The earliest time the head becomes due (ms epoch), or null when the outbox is empty. */
  headDueAt(): number | null {
    const row = stmt(this.db, 'SELECT next_attempt_at FROM alerts_outbox ORDER BY id LIMIT 1').get() as { next_attempt_at: string } | undefined;
    return row ? Date.parse(row.next_attempt_at) : null;
  }

  markDelivered(id: number, notifier: string, now: number = Date.now()): void {
    this.db.transaction(() => {
      const row = stmt(this.db, 'SELECT created_at, kind, slave, payload FROM alerts_outbox WHERE id = ?').get(id) as
        { created_at: string; kind: string; slave: string | null; payload: string } | undefined;
      if (!row) return;
      stmt(this.db, 'INSERT OR REPLACE INTO alerts_sent (id, created_at, sent_at, kind, slave, notifier, payload) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(id, row.created_at, nowIso(now), row.kind, row.slave, notifier, row.payload);
      stmt(this.db, 'DELETE FROM alerts_outbox WHERE id = ?').run(id);
      // Keep the delivered log bounded.
      stmt(this.db, 'DELETE FROM alerts_sent WHERE id <= (SELECT MAX(id) FROM alerts_sent) - 5000').run();
    }).immediate();
  }

  markFailed(id: number, error: string, nextAttemptAt: number): void {
    stmt(this.db, 'UPDATE alerts_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?')
      .run(this.redactor.text(error).slice(0, 500), nowIso(nextAttemptAt), id);
  }

  /** Delivered alerts, newest last (for status, tests and the bot). */
  sent(limit = 100): Array<Alert & { id: number; sent_at: string; notifier: string }> {
    const rows = stmt(this.db, 'SELECT id, sent_at, notifier, payload FROM alerts_sent ORDER BY id DESC LIMIT ?').all(limit) as
      Array<{ id: number; sent_at: string; notifier: string; payload: string }>;
    return rows.reverse().map((r) => ({ ...AlertSchema.parse(JSON.parse(r.payload)), id: r.id, sent_at: r.sent_at, notifier: r.notifier }));
  }
}
