/** What a person may do to the latest rollout (`d8 rollout pause|resume|abort`, Telegram /rollout): one set of rules. */
import type { RolloutStatus } from '../../core/rollout';
import { shortCommit } from '../../core/version-info';
import type { RolloutStore } from '../store/rollouts';
import { RolloutError } from '../store/rollouts';
import { rolloutView, type RolloutView } from './view';

export type RolloutVerb = 'pause' | 'resume' | 'abort';
export const ROLLOUT_VERBS: RolloutVerb[] = ['pause', 'resume', 'abort'];

export const ROLLOUT_MOVES: Record<RolloutVerb, { from: RolloutStatus[]; to: RolloutStatus; help: string; done: string }> = {
  pause: { from: ['running'], to: 'paused', help: 'stop starting new deploys (a deploy or gate already running finishes)', done: 'paused: no new slave is updated until it is resumed' },
  resume: { from: ['paused'], to: 'running', help: 'continue a paused rollout from its stage', done: 'resumed from its stage' },
  abort: {
    from: ['running', 'paused', 'halted', 'rejected'], to: 'aborted',
    help: "stop the rollout for good: every slave stays on the release it runs until the master's commit changes", done: "aborted: slaves stay on their release until the master's commit changes",
  },
};

/** The latest rollout of the stack, or a RolloutError saying why there is none. */
export function latestRollout(rollouts: RolloutStore, stack: string, hasPolicy: boolean): RolloutView {
  const r = rollouts.latest(stack);
  if (!r) {
    throw new RolloutError(hasPolicy
      ? `stack ${stack} has had no rollout yet: one starts when the master's commit changes and slaves are behind`
      : `stack ${stack} has no rollout policy: add d8:rollout (e.g. { canary: 1, batchSize: 2, healthyForSeconds: 30, maxFailures: 1 }) to its stack file`);
  }
  return rolloutView(r);
}

/** Pauses, resumes or aborts the latest rollout; a RolloutError when its status does not allow it. */
export function moveRollout(rollouts: RolloutStore, stack: string, hasPolicy: boolean, verb: RolloutVerb): { view: RolloutView; message: string } {
  const r = latestRollout(rollouts, stack, hasPolicy);
  const m = ROLLOUT_MOVES[verb];
  if (!rollouts.transition(r.id, m.from, m.to)) {
    throw new RolloutError(`rollout ${r.id} of ${shortCommit(r.commit)} is ${r.status}: it can be ${verb === 'abort' ? 'aborted' : `${verb}d`} only when ${m.from.join(' or ')}`);
  }
  return { view: rolloutView(rollouts.get(r.id)!), message: `rollout ${r.id} of ${shortCommit(r.commit)} ${m.done}` };
}
