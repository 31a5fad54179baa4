/** The daemon's periodic part of issue 16: budget alerts for approvals made anywhere (CLI, bot, API), and the daily summary. */
import type { Budgets, DailySummaryConfig } from '../../core/approval';
import type { Logger } from '../../core/logger';
import type { Store } from '../store';
import { checkBudgets } from './budget-watch';
import { sendDailySummaryIfDue } from './daily-summary';

export interface RequestDutiesOptions {
  store: Store;
  config: { stack: string; budgets?: Budgets; dailySummary?: DailySummaryConfig };
  logger: Logger;
  now?: () => number;
  /** How often budgets and the summary's schedule are looked at. */
  everyMs?: number;
}

export function startRequestDuties(o: RequestDutiesOptions): { stop(): void; tick(): void } {
  const now = o.now ?? Date.now;
  const cfg = o.config.dailySummary ?? { enabled: true, at: '09:00' };
  const budgets = o.config.budgets ?? {};
  const log = o.logger.child({ component: 'requests' });
  const tick = (): void => {
    try {
      checkBudgets(o.store, budgets, o.config.stack, now());
      const r = sendDailySummaryIfDue(o.store, cfg, budgets, o.config.stack, now());
      if (r === 'sent') log.info('daily summary sent');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'budget / daily summary check failed (tried again shortly)');
    }
  };
  const timer = setInterval(tick, o.everyMs ?? 15_000);
  timer.unref();
  // Approvals in this process (the bot, the dashboard) are checked against the budgets at once.
  const off = o.store.requests.onChange((e) => { if (e.request.status === 'APPROVED') tick(); });
  return { stop: () => { clearInterval(timer); off(); }, tick };
}
