/**
 * Which slaves a new rollout updates and in which stage: pure. Stage 0 is the canary (`canary`
 * slaves), then stages of `batchSize`, in stack order. Only slaves the per-slave policy would update
 * by itself take part: behind the master, auto-update `auto`, an SSH key at hand; an `ahead` or
 * `diverged` slave is never planned (it is asked about, never downgraded).
 *
 * A slave's own `rollout.place` (core/rollout.ts) moves it: `canary` slaves are the canary before
 * `any` slaves; `batch` and `last` slaves never are; `last` slaves come in the final batches, after
 * every other one. With no slave allowed to be the canary, the batches start at stage 0.
 */
import type { RolloutPolicy, SlaveRollout } from '../../core/rollout';
import type { Drift, SlaveState } from '../../core/fleet-state';
import type { AutoUpdatePolicy } from '../../core/stack-config';

export interface PlanCandidate {
  name: string;
  state: SlaveState;
  drift: Drift;
  commit: string | null;
  autoUpdate: AutoUpdatePolicy;
  sshKeyMissing: boolean;
  rollout?: SlaveRollout;
}

export interface PlannedMember { slave: string; stage: number; from_commit: string | null; healthy_for_seconds: number | null }

export function planRollout(candidates: readonly PlanCandidate[], policy: RolloutPolicy): PlannedMember[] {
  const chosen = candidates.filter((c) => c.state === 'version_mismatch' && c.drift === 'behind' && c.autoUpdate === 'auto' && !c.sshKeyMissing);
  const place = (c: PlanCandidate) => c.rollout?.place ?? 'any';
  const canaries = new Set([...chosen.filter((c) => place(c) === 'canary'), ...chosen.filter((c) => place(c) === 'any')].slice(0, policy.canary));
  const batched = chosen.filter((c) => !canaries.has(c) && place(c) !== 'last');
  const last = chosen.filter((c) => !canaries.has(c) && place(c) === 'last');
  const first = canaries.size > 0 ? 1 : 0;
  const lastFrom = first + Math.ceil(batched.length / policy.batchSize);
  const stageOf = new Map<PlanCandidate, number>([
    ...[...canaries].map((c) => [c, 0] as const),
    ...batched.map((c, i) => [c, first + Math.floor(i / policy.batchSize)] as const),
    ...last.map((c, i) => [c, lastFrom + Math.floor(i / policy.batchSize)] as const),
  ]);
  return chosen
    .map((c) => ({ slave: c.name, stage: stageOf.get(c)!, from_commit: c.commit, healthy_for_seconds: c.rollout?.healthyForSeconds ?? null }))
    .sort((a, b) => a.stage - b.stage);
}
