/**
 * Budget alerts: when a type's approved costs this month reach 80 % or 100 % of its budget, one
 * alert per (month, type, level). Checked after every approval the API sees and periodically by the
 * daemon (approvals from the CLI or another process land in the store only); the claim and the alert
 * are one transaction, so two masters or checks never send the same level twice.
 */
import { BUDGET_THRESHOLDS, type Budgets } from '../../core/approval';
import type { Store } from '../store';
import { monthOf } from './month';
import { spendReport } from './spend-report';

/** The levels `spent` has reached on `budget` (pure). */
export function reachedThresholds(spent: number, budget: number): Array<(typeof BUDGET_THRESHOLDS)[number]> {
  return BUDGET_THRESHOLDS.filter((t) => spent >= (budget * t) / 100);
}

/** Sends the budget alerts now due; returns how many. */
export function checkBudgets(store: Pick<Store, 'db' | 'spend' | 'outbox'>, budgets: Budgets, stack: string, now: number = Date.now()): number {
  if (!Object.keys(budgets).length) return 0;
  const month = monthOf(now);
  return store.db.transaction(() => {
    let sent = 0;
    for (const line of spendReport(store.spend, budgets, month).lines) {
      if (line.budget === null) continue;
      for (const threshold of reachedThresholds(line.spent, line.budget)) {
        if (!store.spend.claimBudgetAlert(month, line.type, threshold, now)) continue;
        store.outbox.enqueue({ kind: 'budget_threshold', stack, slave: null, data: { request_type: line.type, month, threshold, spent: line.spent, budget: line.budget } }, now);
        sent++;
      }
    }
    return sent;
  }).immediate();
}
