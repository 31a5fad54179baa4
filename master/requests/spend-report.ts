/** This month's (or any month's) approved spend per request type against the budgets: one report for the CLI, the API, /gastos, the dashboard and the daily summary. */
import type { Budgets, SpendReport } from '../../core/approval';
import { REQUEST_TYPES, type RequestType } from '../../core/requests';
import type { SpendLedger } from '../store/spend';
import { money } from '../notify/headline';
import { checkedMonth } from './month';

/** Sums of REAL costs drift (0.1 + 0.2); amounts and percentages are kept to two decimals. */
const cents = (n: number): number => Math.round(n * 100) / 100;

export function spendReport(ledger: SpendLedger, budgets: Budgets, month: string): SpendReport {
  const spent = new Map(ledger.month(checkedMonth(month)).map((s) => [s.type, s]));
  const types = REQUEST_TYPES.filter((t: RequestType) => spent.has(t) || budgets[t]);
  const lines = types.map((type) => {
    const s = spent.get(type);
    const budget = budgets[type]?.monthly ?? null;
    const amount = cents(s?.spent ?? 0);
    return { type, spent: amount, approved: s?.approved ?? 0, budget, percent: budget ? cents((amount / budget) * 100) : null };
  });
  return { month, lines, total: cents(lines.reduce((a, l) => a + l.spent, 0)) };
}

/** This month's approved spend per request type, with the budget where one is set (/gastos, the daily summary). */
export function spendText(r: SpendReport): string {
  if (!r.lines.length) return `Spent in ${r.month}: nothing approved with a cost, and no budgets set.`;
  return [
    `Spent in ${r.month} (approved costs):`,
    ...r.lines.map((l) => `• ${l.type}: ${money(l.spent)}${l.budget !== null ? ` of ${money(l.budget)} (${Math.round(l.percent ?? 0)} %)${(l.percent ?? 0) >= 100 ? ' 🚨' : (l.percent ?? 0) >= 80 ? ' ⚠️' : ''}` : ''} · ${l.approved} approved`),
    `Total: ${money(r.total)}`,
  ].join('\n');
}
