/**
 * Picks the notifier for a daemon. The Telegram issue extends this factory (a token in the config
 * selects Telegram); without one, alerts go to the log and that is said once at start.
 */
import type { Logger } from '../../core/logger';
import type { FleetConfig } from '../../core/stack-config';
import { LogNotifier } from './log-notifier';
import type { Notifier } from './notifier';
import { telegramNotifierFactory } from '../telegram/factory';

export type NotifierFactory = (config: FleetConfig, logger: Logger) => Notifier | null;

const factories: NotifierFactory[] = [telegramNotifierFactory];

/** Registers a notifier factory; the first one that returns a notifier wins. */
export function registerNotifierFactory(factory: NotifierFactory): void {
  factories.push(factory);
}

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
