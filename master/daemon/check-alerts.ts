/** The typed alert for a check's state transition (the state machine decides whether one is due). */
import type { AlertInput } from '../../core/alerts';
import type { SlaveConfig } from '../../core/stack-config';
import { tail } from '../../core/text';
import type { SlaveRecord } from '../store/slaves';
import type { AlertDecision } from '../checker/state-machine';

export function checkAlert(stack: string, decision: NonNullable<AlertDecision>, slave: SlaveConfig, rec: SlaveRecord, prev: SlaveRecord, masterCommit: string): AlertInput {
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
    case 'slave_recovered':
      return {
        ...base, kind: 'slave_recovered',
        data: { master_commit: masterCommit, slave_commit: rec.commit, drift: rec.drift, state: rec.state, previous_state: prev.state, strategy: rec.strategy },
      };
  }
}
