/** master/daemon/policy.ts: what the master does about one checked slave, as tables of cases. */
import { policy, type Action, type PolicySlave } from '../../master/daemon/policy';
import { emptyRecord, type SlaveRecord } from '../../master/store/slaves';

const MASTER = 'a'.repeat(40);
const OLDER = 'b'.repeat(40);
const NOW = Date.parse('2026-01-01T12:00:00Z');
const past = new Date(NOW - 1000).toISOString();
const future = new Date(NOW + 60_000).toISOString();

const slave = (o: Partial<PolicySlave> = {}): PolicySlave => ({
  name: 'pc', host: '10.0.0.2', local: false, user: 'd8', sshPort: 22, agentPort: 7600, agentHost: '10.0.0.2',
  strategies: ['docker', 'venv', 'native'], autoUpdate: 'auto', stack: 'prod', sshKeyMissing: false, ...o,
});
const rec = (o: Partial<SlaveRecord> = {}): SlaveRecord => ({ ...emptyRecord('prod', 'pc'), last_seen: past, ...o });
const behind = (o: Partial<SlaveRecord> = {}): SlaveRecord => rec({ state: 'version_mismatch', drift: 'behind', commit: OLDER, ...o });

type Row = [string, SlaveRecord, PolicySlave, Action[]];

describe('policy: slaves that are down', () => {
  const rows: Row[] = [
    ['healthy: nothing', rec({ state: 'healthy', drift: 'equal' }), slave(), []],
    ['unknown (never checked): nothing', rec({ state: 'unknown' }), slave(), []],
    ['pending: wait for more failed checks', rec({ state: 'pending', failures: 1 }), slave(), []],
    ['dead: recover', rec({ state: 'dead' }), slave(), [{ kind: 'recover', why: 'dead' }]],
    ['dead, backing off: wait', rec({ state: 'dead', next_recovery_at: future }), slave(), []],
    ['dead, backoff over: recover', rec({ state: 'dead', next_recovery_at: past, recovery_attempts: 1 }), slave(), [{ kind: 'recover', why: 'dead' }]],
    ['dead, escalated: wait for a person', rec({ state: 'dead', escalated: true }), slave(), []],
    ['dev local slave never seen, pending: install it now', rec({ state: 'pending', last_seen: null }), slave({ stack: 'dev', local: true }), [{ kind: 'recover', why: 'missing' }]],
    ['dev local slave never seen, after a first try: wait for dead', rec({ state: 'pending', last_seen: null, recovery_attempts: 1 }), slave({ stack: 'dev', local: true }), []],
    ['prod local slave never seen, pending: wait', rec({ state: 'pending', last_seen: null }), slave({ local: true }), []],
    ['dead, no SSH key, agent unreachable: ask a person at once', rec({ state: 'dead' }), slave({ sshKeyMissing: true }), [{ kind: 'escalate', why: 'no_ssh_key' }]],
    ['dead, no SSH key, agent answers HTTP: try a restart', rec({ state: 'dead', last_error_reachable: true }), slave({ sshKeyMissing: true }), [{ kind: 'recover', why: 'dead' }]],
    ['dead, no SSH key, escalated: wait', rec({ state: 'dead', escalated: true }), slave({ sshKeyMissing: true }), []],
  ];
  it.each(rows)('%s', (_what, r, s, expected) => {
    expect(policy(r, s, MASTER, NOW)).toEqual(expected);
  });
});

describe('policy: version mismatch', () => {
  const rows: Row[] = [
    ['behind, auto: update', behind(), slave(), [{ kind: 'update', targetCommit: MASTER }]],
    ['behind, auto, update backing off: wait', behind({ update_target: MASTER, next_update_at: future }), slave(), []],
    ['behind, auto, backoff over: update again', behind({ update_target: MASTER, next_update_at: past, update_attempts: 2 }), slave(), [{ kind: 'update', targetCommit: MASTER }]],
    ['behind, auto, backoff for an older target: update now', behind({ update_target: OLDER, next_update_at: future }), slave(), [{ kind: 'update', targetCommit: MASTER }]],
    ['behind, auto, escalated for this commit: wait for a person', behind({ update_target: MASTER, update_request_id: 'req-0003' }), slave(), []],
    ['behind, auto, no SSH key: ask a person', behind(), slave({ sshKeyMissing: true }), [{ kind: 'ask_human', about: 'update_needs_ssh', targetCommit: MASTER }]],
    ['behind, off: nothing', behind(), slave({ autoUpdate: 'off' }), []],
    ['behind, approve: ask', behind(), slave({ autoUpdate: 'approve' }), [{ kind: 'ask_human', about: 'approve_update', targetCommit: MASTER }]],
    ['behind, approve, request filed for this commit (any answer): do not ask again', behind({ update_target: MASTER, update_request_id: 'req-0001' }), slave({ autoUpdate: 'approve' }), []],
    ['behind, approve, request filed for an older commit: ask about the new one', behind({ update_target: OLDER, update_request_id: 'req-0001' }), slave({ autoUpdate: 'approve' }), [{ kind: 'ask_human', about: 'approve_update', targetCommit: MASTER }]],
    ['ahead: ask, whatever the policy', rec({ state: 'version_mismatch', drift: 'ahead' }), slave({ autoUpdate: 'off' }), [{ kind: 'ask_human', about: 'ahead', targetCommit: MASTER }]],
    ['diverged: ask', rec({ state: 'version_mismatch', drift: 'diverged' }), slave(), [{ kind: 'ask_human', about: 'diverged', targetCommit: MASTER }]],
    ['ahead, asked for this commit: do not ask again', rec({ state: 'version_mismatch', drift: 'ahead', update_target: MASTER, update_request_id: 'req-0002' }), slave(), []],
    ['ahead, an approved update failed (update_target set by it): do not ask again', rec({ state: 'version_mismatch', drift: 'ahead', update_target: MASTER, update_request_id: 'req-0002', update_attempts: 1, next_update_at: past }), slave(), []],
    ['unknown commit: nothing automatic', rec({ state: 'version_mismatch', drift: 'unknown' }), slave(), []],
  ];
  it.each(rows)('%s', (_what, r, s, expected) => {
    expect(policy(r, s, MASTER, NOW)).toEqual(expected);
  });

  it('is pure: the same input gives the same answer and the record is not changed', () => {
    const r = behind();
    const copy = JSON.parse(JSON.stringify(r));
    expect(policy(r, slave(), MASTER, NOW)).toEqual(policy(r, slave(), MASTER, NOW));
    expect(r).toEqual(copy);
  });
});
