/**
 * What the master should do about one slave after a check: pure (no I/O, the clock passed in), so
 * every rule is a row in a table test. The sweep loop runs the actions (master/daemon/actions/).
 *
 * Requests are asked once per (slave, master commit): `update_target` is the master commit the last
 * update or request was about and `update_request_id` the request filed for it, so a rejected,
 * postponed or approved-then-failed request is not filed again until the master's commit changes.
 */
import type { SlaveConfig } from '../../core/stack-config';
import type { SlaveRecord } from '../store/slaves';

export type RecoverWhy = 'dead' | 'missing';
export type AskAbout = 'approve_update' | 'ahead' | 'diverged' | 'update_needs_ssh';

export type Action =
  /** Restart the agent when it answers HTTP, else (or then) redeploy; escalate when that keeps failing. */
  | { kind: 'recover'; why: RecoverWhy }
  /** Redeploy a slave that is behind with the master's commit. */
  | { kind: 'update'; targetCommit: string }
  /** File a request for a decision (an update to approve, a slave ahead or diverged, an update the master cannot run). */
  | { kind: 'ask_human'; about: AskAbout; targetCommit: string }
  /** Nothing the master can try: ask a person to fix it now. */
  | { kind: 'escalate'; why: 'no_ssh_key' };

/** The slave as the policy sees it: its config, its stack, and whether the master holds an SSH key for it. */
export type PolicySlave = SlaveConfig & { stack: string; sshKeyMissing: boolean };

const due = (at: string | null, now: number): boolean => !at || Date.parse(at) <= now;

/** A request about this master commit was already filed (whatever became of it). */
export const requestFiledFor = (rec: SlaveRecord, masterCommit: string): boolean =>
  rec.update_request_id !== null && rec.update_target === masterCommit;

export function policy(rec: SlaveRecord, slave: PolicySlave, masterCommit: string, now: number): Action[] {
  if (rec.state === 'pending' || rec.state === 'dead') return downPolicy(rec, slave, now);
  if (rec.state === 'version_mismatch') return mismatchPolicy(rec, slave, masterCommit, now);
  return [];
}

function downPolicy(rec: SlaveRecord, slave: PolicySlave, now: number): Action[] {
  if (rec.escalated || !due(rec.next_recovery_at, now)) return [];
  // The dev stack deploys its local slave the first time it is missing, without waiting for "dead".
  const missing = slave.stack === 'dev' && slave.local && rec.last_seen === null && rec.recovery_attempts === 0;
  if (rec.state === 'pending' && !missing) return [];
  // Without a key only a restart can help, and only an agent that answers HTTP can be restarted.
  if (slave.sshKeyMissing && !rec.last_error_reachable) return [{ kind: 'escalate', why: 'no_ssh_key' }];
  return [{ kind: 'recover', why: missing ? 'missing' : 'dead' }];
}

function mismatchPolicy(rec: SlaveRecord, slave: PolicySlave, masterCommit: string, now: number): Action[] {
  if (requestFiledFor(rec, masterCommit)) return [];
  if (rec.drift === 'ahead' || rec.drift === 'diverged') return [{ kind: 'ask_human', about: rec.drift, targetCommit: masterCommit }];
  if (rec.drift !== 'behind' || slave.autoUpdate === 'off') return [];
  if (slave.autoUpdate === 'approve') return [{ kind: 'ask_human', about: 'approve_update', targetCommit: masterCommit }];
  if (slave.sshKeyMissing) return [{ kind: 'ask_human', about: 'update_needs_ssh', targetCommit: masterCommit }];
  if (rec.update_target === masterCommit && !due(rec.next_update_at, now)) return [];
  return [{ kind: 'update', targetCommit: masterCommit }];
}
