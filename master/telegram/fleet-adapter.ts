/** The bot's BotServices on top of the master's FleetControl facade. */
import type { FleetControl } from '../control';
import type { FleetConfig } from '../../core/stack-config';
import type { BotServices } from './services';
import { spendReport } from '../requests/spend-report';
import { latestRollout, moveRollout } from '../rollout/control';

export function servicesFromControl(control: FleetControl, config: FleetConfig): BotServices {
  return {
    status: async () => {
      const s = control.status();
      return {
        stack: s.stack,
        master_commit: s.master.commit,
        slaves: s.slaves.map((x) => ({
          name: x.name, state: x.state, drift: x.drift, commit: x.commit, strategy: x.strategy, supervisor: x.supervisor, reboot_safe: x.reboot_safe, last_seen: x.last_seen, last_error: x.last_error,
        })),
      };
    },
    retry: (slave) => control.retry(slave),
    update: (slave) => control.update(slave),
    requests: control.requests,
    spend: (month) => spendReport(control.spend, config.budgets ?? {}, month),
    slaveNames: () => config.slaves.map((s) => s.name),
    rollout: () => latestRollout(control.rollouts, config.stack, !!config.rollout),
    moveRollout: (verb) => moveRollout(control.rollouts, config.stack, !!config.rollout, verb).message,
  };
}
