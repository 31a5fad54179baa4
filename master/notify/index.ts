/**
 * Picks the notifier for a daemon: Telegram when a token is configured; without one, alerts go to
 * the log and that is said once at start.
 */
import type { Logger } from '../../core/logger';
import type { FleetConfig } from '../../core/stack-config';
import { LogNotifier } from './log-notifier';
import type { Notifier } from './notifier';
import { telegramNotifierFactory } from '../telegram/factory';

export type NotifierFactory = (config: FleetConfig, logger: Logger) => Notifier | null;

/** The first factory that returns a notifier wins. */
const factories: NotifierFactory[] = [telegramNotifierFactory];

export function createNotifier(config: FleetConfig, logger: Logger): Notifier {
  for (const f of factories) {
    const n = f(config, logger);
    if (n) {
      logger.info({ notifier: n.name }, `notifications go to ${n.name}`);
      return n;
    }
  }
  logger.info({ notifier: 'log' }, 'no Telegram token configured: notifications go to the log');
  return new LogNotifier(logger);
}

export * from './notifier';
export { LogNotifier } from './log-notifier';
export { alertHeadline } from './headline';
