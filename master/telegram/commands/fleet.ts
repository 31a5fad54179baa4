/** /retry <slave> and /update <slave>: start the deploy, answer at once, report the outcome later. */
import { Composer, type Context } from 'telegraf';
import { short } from '../format';
import { commandArgs, say } from '../reply';
import type { ActionOutcome } from '../services';
import { inBackground, type BotDeps } from './deps';

export type FleetAction = 'retry' | 'update';

export function outcomeText(action: FleetAction, slave: string, o: ActionOutcome): string {
  const head = o.ok ? `✅ ${action} of ${slave} done` : `❌ ${action} of ${slave} failed`;
  return [
    head,
    o.message,
    o.commit ? `Commit: ${short(o.commit)}` : '',
    o.state ? `State: ${o.state}` : '',
    !o.ok && o.build_log_path ? `Build log: ${o.build_log_path}` : '',
  ].filter(Boolean).join('\n');
}

/** Null when `slave` is in the fleet, else the answer to give. */
export function unknownSlave(deps: BotDeps, slave: string): string | null {
  const names = deps.services.slaveNames();
  return names.includes(slave) ? null : `No slave named "${slave}". Slaves: ${names.join(', ') || 'none'}.`;
}

/** Runs `action` on `slave` in the background and reports the outcome (plus `after`'s line) to the chat. */
export function startFleetAction(ctx: Context, deps: BotDeps, action: FleetAction, slave: string, after?: (o: ActionOutcome) => Promise<string | null>): void {
  inBackground(deps, async () => {
    let outcome: ActionOutcome;
    try {
      outcome = await deps.services[action](slave);
    } catch (err) {
      outcome = { ok: false, action, message: (err as Error).message };
    }
    const extra = after ? await after(outcome).catch((err: unknown) => `(${(err as Error).message})`) : null;
    await say(ctx, deps, [outcomeText(action, slave, outcome), extra ?? ''].filter(Boolean).join('\n'));
  });
}

export function fleetCommands(deps: BotDeps): Composer<Context> {
  const c = new Composer<Context>();
  for (const action of ['retry', 'update'] as const) {
    c.command(action, async (ctx) => {
      const slave = commandArgs(ctx).split(/\s+/)[0];
      if (!slave) {
        await say(ctx, deps, `Usage: /${action} <slave>. Slaves: ${deps.services.slaveNames().join(', ') || 'none'}.`);
        return;
      }
      const problem = unknownSlave(deps, slave);
      if (problem) {
        await say(ctx, deps, problem);
        return;
      }
      await say(ctx, deps, `⏳ ${action === 'retry' ? 'Redeploying' : 'Updating'} ${slave}… I will report the outcome here.`);
      startFleetAction(ctx, deps, action, slave);
    });
  }
  return c;
}
