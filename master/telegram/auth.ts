/**
 * Only the configured chats may command the bot. Anyone else gets one short refusal and the attempt
 * is logged (chat, user, what they tried); their update goes no further.
 */
import type { Context, MiddlewareFn } from 'telegraf';
import type { ReplyTools } from './reply';
import { say } from './reply';

export function chatOf(ctx: Context): number | undefined {
  return ctx.chat?.id ?? (ctx.callbackQuery && 'message' in ctx.callbackQuery ? ctx.callbackQuery.message?.chat.id : undefined);
}

export function allowOnlyChats(allowed: number[], tools: ReplyTools): MiddlewareFn<Context> {
  const set = new Set(allowed);
  return async (ctx, next) => {
    const chatId = chatOf(ctx);
    if (chatId !== undefined && set.has(chatId)) return next();
    const tried = ctx.callbackQuery && 'data' in ctx.callbackQuery ? `button ${ctx.callbackQuery.data}`
      : ctx.message && 'text' in ctx.message ? ctx.message.text.slice(0, 100) : ctx.updateType;
    tools.logger.warn({ chat_id: chatId ?? null, from_id: ctx.from?.id ?? null, from_username: ctx.from?.username ?? null, tried },
      'Telegram: refused an update from a chat that is not allowed');
    if (ctx.callbackQuery) {
      await ctx.answerCbQuery('Not allowed: this chat may not command the D8 Fleet bot.', { show_alert: true }).catch(() => undefined);
    } else if (chatId !== undefined && ctx.message) {
      await say(ctx, tools, `⛔ Not allowed. This bot only takes commands from its configured chats; chat ${chatId} is not one of them.`);
    }
  };
}
