/**
 * The per-slave state machine and alert decisions (pure). Uptime-Kuma style: a failed check moves
 * a slave to `pending` and it is retried; only after `deadAfter` consecutive failures it is `dead`.
 * Alerts fire on transitions into a bad state, again every `resendMs` while it stays bad, and once
 * on recovery (only when the bad state had been alerted).
 */
import type { Drift, SlaveState } from '../../core/fleet-state';

export { SLAVE_STATES, type SlaveState } from '../../core/fleet-state';

export type CheckOutcome =
  | { ok: true; commit: string; drift: Drift }
  /** `untrusted`: another certificate than the pinned one answered (not a failure of the agent: it does not count towards dead). */
  | { ok: false; error: string; untrusted?: boolean };

export interface MachineOptions {
  /** Consecutive failures that make a slave dead (the first failure makes it pending). */
  deadAfter: number;
}

export interface StateSnapshot {
  state: SlaveState;
  failures: number;
}

export function nextState(prev: StateSnapshot, outcome: CheckOutcome, opts: MachineOptions): StateSnapshot {
  if (outcome.ok) return { state: outcome.drift === 'equal' ? 'healthy' : 'version_mismatch', failures: 0 };
  if (outcome.untrusted) return { state: 'untrusted', failures: prev.failures };
  const failures = prev.failures + 1;
  return { state: failures >= opts.deadAfter ? 'dead' : 'pending', failures };
}

export type BadStateAlert = 'version_mismatch' | 'slave_dead' | 'agent_impersonation';
export type AlertDecision = { kind: BadStateAlert | 'slave_recovered'; resend: boolean } | null;

export interface AlertMemory {
  /** The bad-state alert last sent for this slave (null after recovery). */
  alertKind: BadStateAlert | null;
  alertAt: number | null;
  /** The commit/drift the last mismatch alert was about (a new commit is a new alert). */
  alertKey?: string | null;
}

export function alertFor(state: SlaveState, key: string | null, mem: AlertMemory, now: number, resendMs: number): AlertDecision {
  const bad: BadStateAlert | null = state === 'dead' ? 'slave_dead' : state === 'version_mismatch' ? 'version_mismatch' : state === 'untrusted' ? 'agent_impersonation' : null;
  if (bad) {
    const keyed = bad === 'version_mismatch' || bad === 'agent_impersonation';
    if (mem.alertKind !== bad || (keyed && (mem.alertKey ?? null) !== key)) return { kind: bad, resend: false };
    // Once per episode (per presented certificate): repeating it every check or resend interval adds nothing.
    if (bad === 'agent_impersonation') return null;
    if (mem.alertAt !== null && now - mem.alertAt >= resendMs) return { kind: bad, resend: true };
    return null;
  }
  if (state === 'healthy' && mem.alertKind !== null) return { kind: 'slave_recovered', resend: false };
  return null;
}
