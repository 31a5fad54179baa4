/**
 * The rollout after a retry sweep (the daemon re-checks only its failing slaves between full sweeps,
 * every d8:retryIntervalSeconds): a slave in its health gate that this sweep did not check keeps its
 * last recorded check. It used to be read as "no check" and failed, so with the default intervals a
 * batch of two failed a good slave whenever its partner (or any other slave) was briefly pending.
 * RolloutRunner on a real store; its deployer must not be called.
 */
import { RolloutRunner } from '../../master/daemon/actions/rollout';
import type { ActionContext } from '../../master/daemon/actions/context';
import { TuningSchema } from '../../master/daemon/tuning';
import { resolveFleetConfig } from '../../core/stack-config';
import { createLogger } from '../../core/logger';
import { nowIso } from '../../master/store/db';
import { RolloutPolicySchema } from '../../core/rollout';
import { useTempStore } from '../support/temp-store';

const C = 'c'.repeat(40);
const OLD = 'a'.repeat(40);
const STACK = 't';

describe('a rollout after a retry sweep', () => {
  const store = useTempStore();

  const runner = () => {
    const s = store();
    const config = resolveFleetConfig({
      slaves: ['a', 'b', 'x'].map((name, i) => ({ name, host: 'local', agentPort: 7601 + i, strategies: ['native'] })),
      agentToken: 'A'.repeat(40),
      rollout: { canary: 1, batchSize: 2, healthyForSeconds: 30, maxFailures: 1 },
    }, { stack: STACK, env: {} });
    const never = (what: string) => () => { throw new Error(`${what} must not be called here`); };
    const ctx: ActionContext = {
      config, stack: STACK, store: s, tuning: TuningSchema.parse({}),
      deploys: { engine: 'direct', installsGivenBundles: true, deploy: never('deploy'), releaseBundle: never('releaseBundle') },
      client: null as never, log: createLogger({ name: 'test', level: 'silent' }),
      masterCommit: () => C, sshKeyMissing: () => false,
      checkAndRecord: never('checkAndRecord'), awaitAgent: never('awaitAgent'),
    };
    return new RolloutRunner(ctx, never('track'), () => new Set<string>());
  };

  it('keeps a gate member that only a full sweep checks, and fails it when its recorded check is bad', async () => {
    const s = store();
    const r = runner();
    const ro = s.rollouts.create(STACK, C, RolloutPolicySchema.parse({ healthyForSeconds: 30 }), [
      { slave: 'a', stage: 0, from_commit: OLD }, { slave: 'b', stage: 1, from_commit: OLD },
    ]);
    s.rollouts.setMember(ro.id, 'a', 'gate', { gate_since: nowIso() });
    s.slaves.patch(STACK, 'a', { state: 'healthy', drift: 'equal', commit: C });
    const pendingX = s.slaves.patch(STACK, 'x', { state: 'pending', drift: 'unknown', commit: null, failures: 1 });

    // A retry sweep: only x (pending) was checked.
    await r.afterSweep([pendingX], C, Date.now());
    expect(s.rollouts.get(ro.id)!.members.map((m) => [m.slave, m.status, m.error])).toEqual([['a', 'gate', null], ['b', 'pending', null]]);

    // Its last recorded check says it died: that fails the gate, retry sweep or not.
    s.slaves.patch(STACK, 'a', { state: 'dead', commit: C });
    await r.afterSweep([pendingX], C, Date.now());
    expect(s.rollouts.get(ro.id)!.members[0]).toMatchObject({ slave: 'a', status: 'failed', error: 'is dead during the health gate' });
  });
});
