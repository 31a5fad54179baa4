/**
 * The persistent alert outbox (table alerts_outbox): written first, removed only once delivered
 * (then kept in alerts_sent, bounded by master/store/retention.ts). Payloads are core/alerts.ts JSON;
 * a payload that does not parse (an older master's row) is handed out as `invalid` so the dispatcher can set it aside.
 */
import type { Db } from './db';
import { nowIso, stmt } from './db';
import { Redactor, environmentSecrets } from '../../core/redact';
import { AlertSchema, type Alert, type AlertInput } from '../../core/alerts';
import { parseStoredJson } from './stored-row';

export type OutboxRow =
  | { id: number; attempts: number; alert: Alert }
  | { id: number; attempts: number; alert: null; invalid: string };

/** One alert as listed for status pages and the dashboard. */
export interface RecentAlert {
  id: number;
  /** queued: waiting in the outbox (maybe retrying) · sent: accepted by `notifier` · skipped: unreadable, set aside. */
  status: 'queued' | 'sent' | 'skipped';
  alert: Alert;
  created_at: string;
  sent_at: string | null;
  notifier: string | null;
  attempts: number;
  last_error: string | null;
}

export interface RecentFilter {
  limit?: number;
  slave?: string;
  kinds?: Alert['kind'][];
}

/** The notifier name a set-aside row is recorded under in alerts_sent. */
export const SKIPPED_NOTIFIER = 'skipped';

function parsePayload(payload: string): { alert: Alert } | { invalid: string } {
  const p = parseStoredJson(AlertSchema, payload);
  return p.ok ? { alert: p.value } : { invalid: p.invalid };
}

export class AlertOutbox {
  private readonly redactor: Redactor;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly db: Db, secrets: string[] | Redactor = []) {
    this.redactor = secrets instanceof Redactor ? secrets.with(...environmentSecrets()) : new Redactor([...environmentSecrets(), ...secrets]);
  }

  /** Text scrubbed as alerts are: for other rows that end up in messages and pages (human requests). */
  scrub(text: string): string {
    return this.redactor.text(text);
  }

  /** Called after every enqueue in this process (the dispatcher wakes up at once). */
  onEnqueue(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Adds an alert; safe inside a caller's transaction. Secrets are scrubbed before they are stored. */
  enqueue(input: AlertInput, now: number = Date.now()): number {
    const alert = AlertSchema.parse(this.redactor.value({ ...input, created_at: input.created_at ?? nowIso(now) }));
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
      const parsed = parsePayload(row.payload);
      return 'alert' in parsed
        ? { id: row.id, attempts: row.attempts, alert: parsed.alert }
        : { id: row.id, attempts: row.attempts, alert: null, invalid: parsed.invalid };
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
    }).immediate();
  }

  /** Sets an unreadable row aside (kept in alerts_sent under notifier "skipped"), so it no longer blocks the queue. */
  markSkipped(id: number, now: number = Date.now()): void {
    this.markDelivered(id, SKIPPED_NOTIFIER, now);
  }

  markFailed(id: number, error: string, nextAttemptAt: number): void {
    stmt(this.db, 'UPDATE alerts_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?')
      .run(this.redactor.text(error).slice(0, 500), nowIso(nextAttemptAt), id);
  }

  /** Delivered alerts, newest last (for status, tests and the bot); unreadable rows are left out. */
  sent(limit = 100): Array<Alert & { id: number; sent_at: string; notifier: string }> {
    const rows = stmt(this.db, 'SELECT id, sent_at, notifier, payload FROM alerts_sent WHERE notifier != ? ORDER BY id DESC LIMIT ?').all(SKIPPED_NOTIFIER, limit) as
      Array<{ id: number; sent_at: string; notifier: string; payload: string }>;
    const out: Array<Alert & { id: number; sent_at: string; notifier: string }> = [];
    for (const r of rows.reverse()) {
      const p = parsePayload(r.payload);
      if ('alert' in p) out.push({ ...p.alert, id: r.id, sent_at: r.sent_at, notifier: r.notifier });
    }
    return out;
  }

  /**
   * The most recent alerts, delivered or still queued, oldest first (ids are the order they were
   * raised in). The dashboard's and `d8 status`'s view of events; unreadable rows are left out.
   */
  recent(filter: RecentFilter = {}): RecentAlert[] {
    const limit = filter.limit ?? 100;
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.slave !== undefined) { where.push('slave = ?'); args.push(filter.slave); }
    if (filter.kinds?.length) { where.push(`kind IN (${filter.kinds.map(() => '?').join(',')})`); args.push(...filter.kinds); }
    const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const rows = this.db.prepare(`SELECT * FROM (
        SELECT id, created_at, payload, sent_at, notifier, 0 AS attempts, NULL AS last_error FROM alerts_sent ${w}
        UNION ALL
        SELECT id, created_at, payload, NULL AS sent_at, NULL AS notifier, attempts, last_error FROM alerts_outbox ${w}
      ) ORDER BY id DESC LIMIT ?`).all(...args, ...args, limit) as Array<{
      id: number; created_at: string; payload: string; sent_at: string | null; notifier: string | null; attempts: number; last_error: string | null;
    }>;
    const out: RecentAlert[] = [];
    for (const r of rows.reverse()) {
      const p = parsePayload(r.payload);
      if (!('alert' in p)) continue;
      const status = r.notifier === null ? 'queued' : r.notifier === SKIPPED_NOTIFIER ? 'skipped' : 'sent';
      out.push({ id: r.id, status, alert: p.alert, created_at: r.created_at, sent_at: r.sent_at, notifier: r.notifier, attempts: r.attempts, last_error: r.last_error });
    }
    return out;
  }
}
