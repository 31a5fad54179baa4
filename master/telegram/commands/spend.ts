/** /gastos [YYYY-MM]: approved costs per request type this month (or that month), against the budgets. */
import { Composer, type Context } from 'telegraf';
import { MONTH_RE } from '../../../core/approval';
import { monthOf } from '../../requests/month';
import { spendText } from '../../requests/spend-report';
import { commandArgs, say } from '../reply';
import type { BotDeps } from './deps';

export function spendCommands(deps: BotDeps): Composer<Context> {
  const c = new Composer<Context>();
  c.command('gastos', async (ctx) => {
    const month = commandArgs(ctx).split(/\s+/)[0] || monthOf(Date.now());
    if (!MONTH_RE.test(month)) {
      await say(ctx, deps, `Usage: /gastos [YYYY-MM], e.g. /gastos ${monthOf(Date.now())}.`);
      return;
    }
    await say(ctx, deps, `💰 ${spendText(deps.services.spend(month))}`);
  });
  return c;
}
