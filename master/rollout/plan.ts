/**
 * Which slaves a new rollout updates and in which stage: pure. Stage 0 is the canary (`canary`
 * slaves, in stack order), then stages of `batchSize`. Only slaves the per-slave policy would update
 * by itself take part: behind the master, auto-update `auto`, an SSH key at hand; an `ahead` or
 * `diverged` slave is never planned (it is asked about, never downgraded).
 */
import type { RolloutPolicy } from '../../core/rollout';
import type { Drift, SlaveState } from '../../core/fleet-state';
import type { AutoUpdatePolicy } from '../../core/stack-config';

export interface PlanCandidate {
  name: string;
  state: SlaveState;
  drift: Drift;
  commit: string | null;
  autoUpdate: AutoUpdatePolicy;
  sshKeyMissing: boolean;
}

export interface PlannedMember { slave: string; stage: number; from_commit: string | null }

export function planRollout(candidates: readonly PlanCandidate[], policy: RolloutPolicy): PlannedMember[] {
  const chosen = candidates.filter((c) => c.state === 'version_mismatch' && c.drift === 'behind' && c.autoUpdate === 'auto' && !c.sshKeyMissing);
  return chosen.map((c, i) => {
    const stage = i < policy.canary ? 0 : (policy.canary > 0 ? 1 : 0) + Math.floor((i - policy.canary) / policy.batchSize);
    return { slave: c.name, stage, from_commit: c.commit };
  });
}
