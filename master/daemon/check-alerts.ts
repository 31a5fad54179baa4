/** The typed alerts a check raises: its state transition (the state machine decides) and the reboot-safety warning. */
import type { AlertInput } from '../../core/alerts';
import { SupervisorSchema, type Supervisor } from '../../core/protocol';
import type { SlaveConfig } from '../../core/stack-config';
import { tail } from '../../core/text';
import type { SlaveRecord } from '../store/slaves';
import type { AlertDecision } from '../checker/state-machine';
import type { PinMismatch } from '../agent-client';

export function checkAlert(
  stack: string, decision: NonNullable<AlertDecision>, slave: SlaveConfig, rec: SlaveRecord, prev: SlaveRecord, masterCommit: string, pin?: PinMismatch,
): AlertInput {
  const base = { stack, slave: slave.name };
  switch (decision.kind) {
    case 'version_mismatch':
      return {
        ...base, kind: 'version_mismatch',
        data: {
          master_commit: masterCommit, slave_commit: rec.commit, branch: rec.branch, drift: rec.drift, state: rec.state, previous_state: prev.state,
          strategy: rec.strategy, auto_update: slave.autoUpdate, resend: decision.resend,
        },
      };
    case 'slave_dead':
      return {
        ...base, kind: 'slave_dead',
        data: {
          master_commit: masterCommit, slave_commit: rec.commit, state: rec.state, previous_state: prev.state, error_tail: tail(rec.last_error),
          failures: rec.failures, endpoint: `${slave.agentHost}:${slave.agentPort}`, last_seen: rec.last_seen, resend: decision.resend,
        },
      };
    case 'agent_impersonation':
      return {
        ...base, kind: 'agent_impersonation',
        data: {
          master_commit: masterCommit, slave_commit: rec.commit, state: rec.state, previous_state: prev.state,
          endpoint: `${slave.agentHost}:${slave.agentPort}`, expected: pin?.expected ?? 'unknown', presented: pin?.presented ?? null,
        },
      };
    case 'slave_recovered':
      return {
        ...base, kind: 'slave_recovered',
        data: { master_commit: masterCommit, slave_commit: rec.commit, drift: rec.drift, state: rec.state, previous_state: prev.state, strategy: rec.strategy },
      };
  }
}

/**
 * The one warning for a slave that will not survive a reboot: due when a check first finds it
 * running under a supervisor known not to be reboot-safe (from safe or unknown). The record keeps
 * `reboot_safe` across failed checks, so a slave that dies and comes back the same way is not
 * warned again; one that becomes reboot-safe and then loses it is.
 */
export function rebootSafetyAlert(stack: string, slave: SlaveConfig, rec: SlaveRecord, prev: SlaveRecord): AlertInput | null {
  if (rec.reboot_safe !== false || prev.reboot_safe === false || !isSupervisor(rec.supervisor)) return null;
  return {
    stack, slave: slave.name, kind: 'not_reboot_safe',
    data: { supervisor: rec.supervisor, strategy: rec.strategy, endpoint: `${slave.agentHost}:${slave.agentPort}` },
  };
}

const isSupervisor = (s: string | null): s is Supervisor => SupervisorSchema.safeParse(s).success;
