/**
 * Telegram for the master daemon. createNotifier (master/notify) returns a TelegramNotifier when a
 * token is configured; once the daemon has its FleetControl, startTelegramBot starts the bot next to
 * that notifier (same settings) and ties its stop to the notifier's close().
 */
import type { FleetConfig } from '../../core/stack-config';
import type { FleetControl } from '../control';
import type { Notifier } from '../notify/notifier';
import { TelegramBot } from './bot';
import { servicesFromControl } from './fleet-adapter';
import { TelegramNotifier } from './notifier';

export { TelegramNotifier } from './notifier';
export { TelegramBot, buildBot } from './bot';
export { telegramSettings, DEFAULT_API_ROOT, type TelegramSettings } from './settings';
export { telegramNotifierFactory } from './factory';
export type { BotServices } from './services';

/** Starts the bot when `notifier` is the Telegram one; returns null otherwise (no token: no bot). */
export function startTelegramBot(notifier: Notifier, opts: { config: FleetConfig; control: FleetControl }): TelegramBot | null {
  if (!(notifier instanceof TelegramNotifier) || !notifier.settings) return null;
  notifier.setRequestLookup((id) => { try { return opts.control.requests.get(id); } catch { return null; } });
  const bot = new TelegramBot({
    settings: notifier.settings,
    services: servicesFromControl(opts.control, opts.config),
    logger: notifier.logger,
    redactor: notifier.redactor,
  });
  bot.start();
  notifier.onClose(() => bot.stop());
  return bot;
}
