/**
 * The Telegram notifier factory used by master/notify's createNotifier: a configured token selects
 * Telegram; no token returns null (the log notifier takes over and says so once).
 */
import { Telegram } from 'telegraf';
import type { Logger } from '../../core/logger';
import { fleetRedactor } from '../../core/fleet-secrets';
import type { FleetConfig } from '../../core/stack-config';
import type { Notifier } from '../notify/notifier';
import { TelegramNotifier } from './notifier';
import { telegramSettings } from './settings';

export function telegramNotifierFactory(config: FleetConfig, logger: Logger): Notifier | null {
  const settings = telegramSettings(config);
  if (!settings) return null;
  return new TelegramNotifier({
    telegram: new Telegram(settings.token, { apiRoot: settings.apiRoot }),
    chatIds: settings.chatIds,
    logger,
    redactor: fleetRedactor(config),
    settings,
  });
}
