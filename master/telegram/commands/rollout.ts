/** /rollout [pause|resume|abort]: the latest rollout, or a person's decision about it. */
import { Composer, type Context } from 'telegraf';
import { formatRollout } from '../../rollout/view';
import { ROLLOUT_VERBS, type RolloutVerb } from '../../rollout/control';
import { say } from '../reply';
import type { BotDeps } from './deps';

export function rolloutCommands(deps: BotDeps): Composer<Context> {
  const c = new Composer<Context>();
  c.command('rollout', async (ctx) => {
    const arg = ctx.message.text.split(/\s+/)[1]?.toLowerCase();
    let text: string;
    try {
      if (!arg) text = formatRollout(deps.services.rollout());
      else if ((ROLLOUT_VERBS as string[]).includes(arg)) text = deps.services.moveRollout(arg as RolloutVerb);
      else text = `Usage: /rollout, or /rollout ${ROLLOUT_VERBS.join('|')}`;
    } catch (err) {
      text = (err as Error).message;
    }
    await say(ctx, deps, text);
  });
  return c;
}
