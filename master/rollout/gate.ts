/**
 * The rollout's next steps, decided from its persisted state and the latest checks: pure (the clock
 * passed in), so a restarted master decides from the same rows what the killed one would have.
 *
 *   pending member of the current stage           → deploy it
 *   updating member with no deploy running here   → its commit is already the target and healthy: gate; else deploy
 *   gate member not healthy at the target commit  → fail (then roll back)
 *   gate member healthy for healthyForSeconds     → pass (its own, else the rollout's)
 *   failed member (the rollback not done yet)     → roll back
 *   every member of the stage passed              → next stage, or done
 */
import type { Rollout } from '../../core/rollout';
import type { SlaveState } from '../../core/fleet-state';

export interface SeenSlave { state: SlaveState; commit: string | null }

export type RolloutStep =
  | { kind: 'deploy'; slave: string }
  | { kind: 'start_gate'; slave: string }
  | { kind: 'pass'; slave: string }
  | { kind: 'fail'; slave: string; why: string }
  | { kind: 'rollback'; slave: string }
  | { kind: 'advance'; stage: number }
  | { kind: 'complete' };

export interface GateInput {
  rollout: Rollout;
  /** The latest check of each slave. */
  seen: ReadonlyMap<string, SeenSlave>;
  /** Slaves with a deploy or rollout task running in this process. */
  busy: ReadonlySet<string>;
  now: number;
}

const healthyAt = (s: SeenSlave | undefined, commit: string): boolean => !!s && s.state === 'healthy' && s.commit === commit;

export function decideRollout({ rollout: r, seen, busy, now }: GateInput): RolloutStep[] {
  const steps: RolloutStep[] = [];
  // A failed slave is rolled back whatever the rollout's status (a halt does not leave it broken).
  for (const m of r.members) if (m.status === 'failed' && !busy.has(m.slave)) steps.push({ kind: 'rollback', slave: m.slave });
  if (r.status !== 'running') return steps;
  const stage = r.members.filter((m) => m.stage === r.stage);
  for (const m of stage) {
    if (busy.has(m.slave)) continue;
    const s = seen.get(m.slave);
    switch (m.status) {
      case 'pending':
        steps.push({ kind: 'deploy', slave: m.slave });
        break;
      case 'updating':
        steps.push(healthyAt(s, r.commit) ? { kind: 'start_gate', slave: m.slave } : { kind: 'deploy', slave: m.slave });
        break;
      case 'gate': {
        if (!healthyAt(s, r.commit)) {
          const why = !s ? 'no check' : s.commit !== r.commit ? `reports ${s.commit ? s.commit.slice(0, 7) : 'no commit'}` : `is ${s.state}`;
          steps.push({ kind: 'fail', slave: m.slave, why: `${why} during the health gate` });
        } else if (m.gate_since && now - Date.parse(m.gate_since) >= (m.healthy_for_seconds ?? r.policy.healthyForSeconds) * 1000) {
          steps.push({ kind: 'pass', slave: m.slave });
        }
        break;
      }
      default:
        break;
    }
  }
  if (steps.length > 0) return steps;
  if (stage.some((m) => m.status !== 'passed' && m.status !== 'rolled_back' && m.status !== 'rollback_failed')) return steps;
  const next = r.members.filter((m) => m.stage > r.stage).reduce((min, m) => Math.min(min, m.stage), Infinity);
  return [Number.isFinite(next) ? { kind: 'advance', stage: next } : { kind: 'complete' }];
}

