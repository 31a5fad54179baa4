/**
 * Spend per request type and month (spend_months, kept by triggers from the human requests an
 * approval stamped with `approved_at`, so pruning a request keeps its spend), plus the once-only
 * records of budget alerts and daily summaries sent.
 */
import type { Db } from './db';
import { nowIso, stmt } from './db';
import type { RequestType } from '../../core/requests';

export interface TypeSpend { type: RequestType; spent: number; approved: number }

export interface AutoApproved { id: string; type: RequestType; title: string; estimated_cost: number | null; auto_rule: string; approved_at: string }

export class SpendLedger {
  constructor(private readonly db: Db) {}

  /** Approved (or since completed) costs with approved_at in `month` (UTC, "2026-11"), per type; kept when the requests are pruned. */
  month(month: string): TypeSpend[] {
    return stmt(this.db, `SELECT type, spent, approved FROM spend_months WHERE month = ? AND approved > 0 ORDER BY type`).all(month) as TypeSpend[];
  }

  autoApprovedSince(fromIso: string, toIso: string): AutoApproved[] {
    return stmt(this.db, `SELECT id, type, title, estimated_cost, auto_rule, approved_at FROM human_requests
      WHERE auto_rule IS NOT NULL AND approved_at >= ? AND approved_at < ? ORDER BY seq`).all(fromIso, toIso) as AutoApproved[];
  }

  /** True the first time (month, type, threshold) is claimed: the caller then sends its alert, in the same transaction. */
  claimBudgetAlert(month: string, type: RequestType, threshold: number, now: number = Date.now()): boolean {
    return stmt(this.db, 'INSERT OR IGNORE INTO budget_alerts (month, type, threshold, at) VALUES (?, ?, ?, ?)').run(month, type, threshold, nowIso(now)).changes === 1;
  }

  /** True the first time `day` is claimed. */
  claimSummary(day: string, now: number = Date.now()): boolean {
    return stmt(this.db, 'INSERT OR IGNORE INTO daily_summaries (day, sent_at) VALUES (?, ?)').run(day, nowIso(now)).changes === 1;
  }

  lastSummaryAt(): string | null {
    return (stmt(this.db, 'SELECT MAX(sent_at) AS at FROM daily_summaries').get() as { at: string | null }).at;
  }
}
