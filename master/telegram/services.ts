/**
 * What the bot needs from the master, as an interface: the daemon passes its FleetControl facade
 * (adapted in ./fleet-adapter.ts); tests pass the same real objects. Nothing here is Telegram-specific.
 */
import type { RolloutView } from '../rollout/view';
import type { RolloutVerb } from '../rollout/control';
import type { RequestService } from '../store/requests';
import type { ControlResult } from '../store/commands';
import type { SpendReport } from '../../core/approval';

export interface SlaveView {
  name: string;
  state: string;
  drift: string;
  commit: string | null;
  strategy: string | null;
  supervisor: string | null;
  reboot_safe: boolean | null;
  last_seen: string | null;
  last_error: string | null;
}

export interface FleetView {
  stack: string;
  master_commit: string | null;
  slaves: SlaveView[];
}

export type ActionOutcome = ControlResult;

export interface BotServices {
  status(): Promise<FleetView>;
  /** Redeploys a slave now; resolves with the outcome once the deploy is over. */
  retry(slave: string): Promise<ActionOutcome>;
  /** Updates a slave to the master's commit; resolves with the outcome once it is over. */
  update(slave: string): Promise<ActionOutcome>;
  requests: Pick<RequestService, 'list' | 'get' | 'approve' | 'reject' | 'postpone' | 'complete'>;
  /** Approved costs per request type in `month` (YYYY-MM) against the budgets. */
  spend(month: string): SpendReport;
  /** Slave names, to answer "/retry nosuch" with the list. */
  slaveNames(): string[];
  /** The latest rollout (a RolloutError when there is none). */
  rollout(): RolloutView;
  /** Pauses, resumes or aborts it; says what happened (a RolloutError when its status does not allow it). */
  moveRollout(verb: RolloutVerb): string;
}
