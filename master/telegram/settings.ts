/**
 * Telegram settings for the daemon: token and allowed chats from the stack config (environment wins,
 * see core/stack-config.ts) and the Bot API root from TELEGRAM_API_ROOT (how tests point the real
 * client at a local stand-in). Validated here so a typo is a clear error naming the variable.
 */
import { z } from 'zod';
import { ConfigError, type FleetConfig } from '../../core/stack-config';

export const DEFAULT_API_ROOT = 'https://api.telegram.org';

export interface TelegramSettings {
  token: string;
  /** Chat ids allowed to command the bot; alerts go to every one of them. */
  chatIds: number[];
  apiRoot: string;
}

const TokenSchema = z.string().regex(/^\d{3,15}:[A-Za-z0-9_-]{20,}$/);
const ApiRootSchema = z.string().url().refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL');

/** Null when no token is configured (the daemon then notifies through the log). */
export function telegramSettings(config: FleetConfig, env: NodeJS.ProcessEnv = process.env): TelegramSettings | null {
  const token = config.telegramToken?.trim();
  if (!token) return null;
  if (!TokenSchema.safeParse(token).success) {
    // Never echo the token itself.
    throw new ConfigError(`stack ${config.stack}: the Telegram token (TELEGRAM_TOKEN or d8:telegramToken) does not look like a bot token ` +
      '("<digits>:<35 characters>", as given by @BotFather)', 'd8:telegramToken');
  }
  const chatIds = config.telegramChatIds.map((raw) => {
    if (!/^-?\d{1,20}$/.test(raw)) {
      throw new ConfigError(`stack ${config.stack}: Telegram chat id "${raw}" is not a number (TELEGRAM_CHAT_ID or d8:telegramChatIds; ` +
        'a comma-separated list of numeric chat ids, e.g. 123456789,-1001234567890)', 'd8:telegramChatIds');
    }
    return Number(raw);
  });
  if (chatIds.length === 0) {
    throw new ConfigError(`stack ${config.stack}: a Telegram token is set but no chat id: set TELEGRAM_CHAT_ID or d8:telegramChatIds ` +
      '(send /start to the bot, then read your id from https://api.telegram.org/bot<token>/getUpdates)', 'd8:telegramChatIds');
  }
  const rawRoot = env.TELEGRAM_API_ROOT?.trim() || DEFAULT_API_ROOT;
  const root = ApiRootSchema.safeParse(rawRoot);
  if (!root.success) {
    throw new ConfigError(`TELEGRAM_API_ROOT "${rawRoot}" ${root.error.issues[0].message} (default ${DEFAULT_API_ROOT})`, 'TELEGRAM_API_ROOT');
  }
  return { token, chatIds: [...new Set(chatIds)], apiRoot: root.data.replace(/\/+$/, '') };
}
