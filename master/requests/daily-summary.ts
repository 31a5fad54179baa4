/**
 * The daily summary (Telegram and the log, through the outbox): what was auto-approved since the
 * last one, this month's spend against the budgets, and what still waits for a person. Sent once a
 * day at `d8:dailySummary.at` (the master's local time), and only when there is something to say.
 * The clock is injected, so the schedule is testable without waiting for a day.
 */
import type { AlertOf } from '../../core/alerts';
import type { Budgets, DailySummaryConfig } from '../../core/approval';
import type { Store } from '../store';
import { monthOf } from './month';
import { spendReport } from './spend-report';

const pad = (n: number): string => String(n).padStart(2, '0');

/** The local day (YYYY-MM-DD) whose summary is due at `now`, or null before `at` (pure). */
export function summaryDueDay(now: Date, at: string): string | null {
  const hhmm = `${pad(now.getHours())}:${pad(now.getMinutes())}`;
  if (hhmm < at) return null;
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

type SummaryData = AlertOf<'daily_summary'>['data'];

export function summaryData(store: Pick<Store, 'spend' | 'requests'>, budgets: Budgets, day: string, since: string, now: number): SummaryData {
  const auto = store.spend.autoApprovedSince(since, new Date(now + 1).toISOString());
  const pending = store.requests.list({ open: true });
  return {
    day, since,
    auto_approved: auto.map((r) => ({ request_id: r.id, request_type: r.type, title: r.title, estimated_cost: r.estimated_cost, rule: r.auto_rule })),
    spend: spendReport(store.spend, budgets, monthOf(now)),
    pending: pending.map((r) => ({ request_id: r.id, request_type: r.type, title: r.title, estimated_cost: r.estimated_cost, priority: r.priority, request_status: r.status })),
  };
}

export const hasNews = (d: SummaryData): boolean => d.auto_approved.length > 0 || d.spend.total > 0 || d.pending.length > 0;

/**
 * Sends today's summary when it is due and not yet sent (by this or an earlier master); returns
 * what it did. The day's claim and the alert are one transaction.
 */
export function sendDailySummaryIfDue(store: Pick<Store, 'db' | 'spend' | 'requests' | 'outbox'>, cfg: DailySummaryConfig, budgets: Budgets, stack: string, now: number): 'not_due' | 'sent' | 'nothing_to_say' | 'already_sent' {
  if (!cfg.enabled) return 'not_due';
  const day = summaryDueDay(new Date(now), cfg.at);
  if (!day) return 'not_due';
  return store.db.transaction(() => {
    const since = store.spend.lastSummaryAt() ?? new Date(now - 24 * 3600_000).toISOString();
    if (!store.spend.claimSummary(day, now)) return 'already_sent' as const;
    const data = summaryData(store, budgets, day, since, now);
    if (!hasNews(data)) return 'nothing_to_say' as const;
    store.outbox.enqueue({ kind: 'daily_summary', stack, slave: null, data }, now);
    return 'sent' as const;
  }).immediate();
}
