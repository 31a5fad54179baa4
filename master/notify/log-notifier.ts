import type { Logger } from '../../core/logger';
import type { Alert, Notifier } from './notifier';

/** The default notifier: every alert is a pino line at warn (info for good news). */
export class LogNotifier implements Notifier {
  readonly name = 'log';

  constructor(private readonly logger: Logger) {}

  async send(alert: Alert): Promise<void> {
    const good = alert.kind === 'slave_recovered' || alert.kind === 'update_done';
    const line = { alert: alert.kind, slave: alert.slave, title: alert.title, text: alert.text, data: alert.data };
    if (good) this.logger.info(line, `alert: ${alert.title}`);
    else this.logger.warn(line, `alert: ${alert.title}`);
  }
}
