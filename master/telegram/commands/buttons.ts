/** The inline ✅ Approve / ❌ Reject buttons under a request: same as /aprobar and /rechazar. */
import { Composer, type Context } from 'telegraf';
import { decide } from '../decide';
import { isNotModified } from '../errors';
import { finish, parseRequestCallback, requestDecided } from '../format';
import { say } from '../reply';
import type { BotDeps } from './deps';

export function requestButtonHandlers(deps: BotDeps): Composer<Context> {
  const c = new Composer<Context>();
  c.on('callback_query', async (ctx, next) => {
    const data = 'data' in ctx.callbackQuery ? ctx.callbackQuery.data : undefined;
    const parsed = data ? parseRequestCallback(data) : null;
    if (!parsed) return next();
    const r = await decide(ctx, deps, parsed.verb, parsed.id);
    await ctx.answerCbQuery(r.ok ? `${parsed.id} ${parsed.verb === 'approve' ? 'approved' : 'rejected'}` : r.message.slice(0, 200))
      .catch((err: unknown) => deps.logger.debug({ err: deps.redactor.text((err as Error).message) }, 'could not answer a button press'));
    // The message keeps the decision and loses its buttons (also when it was decided elsewhere).
    let current = r.ok ? r.request : null;
    if (!current) { try { current = deps.services.requests.get(parsed.id); } catch { current = null; } }
    if (current && current.status !== 'PENDING' && current.status !== 'POSTPONED') {
      await ctx.editMessageText(finish(requestDecided(current), deps.redactor)).catch((err: unknown) => {
        if (!isNotModified(err)) deps.logger.debug({ err: deps.redactor.text((err as Error).message) }, 'could not edit a request message');
      });
    }
    if (r.ok && r.request.action && parsed.verb === 'approve') await say(ctx, deps, `✅ ${r.message}`);
    else if (!r.ok) await say(ctx, deps, r.message);
  });
  c.on('callback_query', async (ctx) => {
    await ctx.answerCbQuery('This button is no longer handled.').catch(() => undefined);
  });
  return c;
}
