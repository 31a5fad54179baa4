/** Replies that never leak a secret, fit Telegram's limit and ride out a short 429. */
import type { Context } from 'telegraf';
import type { Logger } from '../../core/logger';
import type { Redactor } from '../../core/redact';
import { withRetryAfter } from './errors';
import { finish, type InlineButton } from './format';

export interface ReplyTools {
  logger: Logger;
  redactor: Redactor;
}

export async function say(ctx: Context, tools: ReplyTools, text: string, buttons?: InlineButton[][]): Promise<void> {
  const chatId = ctx.chat?.id;
  if (chatId === undefined) return;
  const body = finish(text, tools.redactor);
  try {
    await withRetryAfter(() => ctx.telegram.sendMessage(chatId, body, buttons ? { reply_markup: { inline_keyboard: buttons } } : {}));
  } catch (err) {
    // The user will not see this answer; the log says why (the outbox is for alerts, not replies).
    tools.logger.warn({ chat_id: chatId, err: tools.redactor.text((err as Error).message) }, 'could not send a bot reply');
  }
}

/** Who did it, for request notes and logs: "@name (chat 123)". */
export function actor(ctx: Context): string {
  const from = ctx.from;
  const who = from?.username ? `@${from.username}` : from?.first_name ?? 'someone';
  return `${who} via Telegram (chat ${ctx.chat?.id ?? '?'})`;
}

/** The command's argument text (after "/cmd" or "/cmd@bot"), trimmed. */
export function commandArgs(ctx: Context): string {
  const msg = ctx.message as { text?: string } | undefined;
  const text = msg?.text ?? '';
  const m = /^\/\S+\s*([\s\S]*)$/.exec(text);
  return (m?.[1] ?? '').trim();
}
