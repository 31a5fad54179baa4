/** /help and /start: what the bot understands. */
import { Composer, type Context } from 'telegraf';
import { helpText } from '../menu';
import { say } from '../reply';
import type { BotDeps } from './deps';

export function helpCommands(deps: BotDeps): Composer<Context> {
  const c = new Composer<Context>();
  c.command(['help', 'start'], (ctx) => say(ctx, deps, helpText()));
  return c;
}

/** Any other command: say so and point at /help (plain chatter is ignored). */
export function unknownCommand(deps: BotDeps): Composer<Context> {
  const c = new Composer<Context>();
  c.on('message', async (ctx, next) => {
    const text = 'text' in ctx.message ? ctx.message.text : '';
    if (!text.startsWith('/')) return next();
    const cmd = text.split(/\s/)[0];
    const to = cmd.split('@')[1];
    if (to && to.toLowerCase() !== (ctx.me ?? '').toLowerCase()) return next(); // meant for another bot in a group
    await say(ctx, deps, `I do not know ${cmd}. /help lists what I understand.`);
  });
  return c;
}
