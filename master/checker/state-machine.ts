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
  | { ok: false; error: string };

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
  const failures = prev.failures + 1;
  return { state: failures >= opts.deadAfter ? 'dead' : 'pending', failures };
}

export type AlertDecision = { kind: 'version_mismatch' | 'slave_dead' | 'slave_recovered'; resend: boolean } | null;

export interface AlertMemory {
  /** The bad-state alert last sent for this slave (null after recovery). */
  alertKind: 'version_mismatch' | 'slave_dead' | null;
  alertAt: number | null;
  /** The commit/drift the last mismatch alert was about (a new commit is a new alert). */
  alertKey?: string | null;
}

export function alertFor(state: SlaveState, key: string | null, mem: AlertMemory, now: number, resendMs: number): AlertDecision {
  const bad = state === 'dead' ? 'slave_dead' : state === 'version_mismatch' ? 'version_mismatch' : null;
  if (bad) {
    if (mem.alertKind !== bad || (bad === 'version_mismatch' && (mem.alertKey ?? null) !== key)) return { kind: bad, resend: false };
    if (mem.alertAt !== null && now - mem.alertAt >= resendMs) return { kind: bad, resend: true };
    return null;
  }
  if (state === 'healthy' && mem.alertKind !== null) return { kind: 'slave_recovered', resend: false };
  return null;
}
