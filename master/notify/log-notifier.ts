import type { Logger } from '../../core/logger';
import { isGoodNews, type Alert } from '../../core/alerts';
import type { Notifier } from './notifier';
import { alertHeadline } from './headline';

/** The default notifier: every alert is a pino line at warn (info for good news) with its typed fields. */
export class LogNotifier implements Notifier {
  readonly name = 'log';

  constructor(private readonly logger: Logger) {}

  async send(alert: Alert): Promise<void> {
    const line = { alert: alert.kind, slave: alert.slave, stack: alert.stack, data: alert.data };
    const msg = `alert: ${alertHeadline(alert)}`;
    if (isGoodNews(alert)) this.logger.info(line, msg);
    else this.logger.warn(line, msg);
  }
}
