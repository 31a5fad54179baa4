/** The rollout's pure parts: which slaves in which stage (plan), and the next steps (gate) with the clock passed in. */
import { planRollout, type PlanCandidate } from '../../master/rollout/plan';
import { decideRollout, type SeenSlave } from '../../master/rollout/gate';
import { RolloutPolicySchema, type Rollout, type RolloutMember } from '../../core/rollout';
import { resolveFleetConfig, ConfigError } from '../../core/stack-config';

const policy = RolloutPolicySchema.parse({ canary: 1, batchSize: 2, healthyForSeconds: 30, maxFailures: 1 });
const C = 'c'.repeat(40);
const OLD = 'a'.repeat(40);
const T0 = Date.parse('2026-01-01T00:00:00Z');

const cand = (name: string, over: Partial<PlanCandidate> = {}): PlanCandidate =>
  ({ name, state: 'version_mismatch', drift: 'behind', commit: OLD, autoUpdate: 'auto', sshKeyMissing: false, ...over });

const member = (slave: string, stage: number, status: RolloutMember['status'], gate_since: string | null = null): RolloutMember =>
  ({ slave, stage, status, from_commit: OLD, gate_since, error: null, healthy_for_seconds: null });

const rollout = (members: RolloutMember[], over: Partial<Rollout> = {}): Rollout => ({
  id: 1, stack: 't', commit: C, status: 'running', stage: 0, policy, failures: 0, request_id: null,
  created_at: new Date(T0).toISOString(), updated_at: new Date(T0).toISOString(), members, ...over,
});

const seen = (entries: Array<[string, SeenSlave]>) => new Map(entries);
const healthy: SeenSlave = { state: 'healthy', commit: C };

describe('planRollout', () => {
  it('puts the canary alone in stage 0, then batches of batchSize, in stack order', () => {
    expect(planRollout(['a', 'b', 'c', 'd', 'e'].map((n) => cand(n)), policy).map((m) => [m.slave, m.stage]))
      .toEqual([['a', 0], ['b', 1], ['c', 1], ['d', 2], ['e', 2]]);
  });

  it('never plans an ahead or diverged slave, one that is not on auto, or one without an SSH key', () => {
    const plan = planRollout([
      cand('ahead', { drift: 'ahead' }), cand('div', { drift: 'diverged' }), cand('appr', { autoUpdate: 'approve' }),
      cand('nokey', { sshKeyMissing: true }), cand('dead', { state: 'dead', drift: 'unknown' }), cand('ok'),
    ], policy);
    expect(plan).toEqual([{ slave: 'ok', stage: 0, from_commit: OLD, healthy_for_seconds: null }]);
  });

  it('without a canary the batches start at stage 0', () => {
    expect(planRollout(['a', 'b', 'c'].map((n) => cand(n)), { ...policy, canary: 0 }).map((m) => m.stage)).toEqual([0, 0, 1]);
  });
});

describe('planRollout with d8:slaves[i].rollout', () => {
  const stages = (plan: ReturnType<typeof planRollout>) => plan.map((m) => [m.slave, m.stage]);

  it('a `canary` slave is the canary before any slave earlier in the stack', () => {
    const plan = planRollout([cand('a'), cand('b'), cand('test', { rollout: { place: 'canary' } }), cand('d')], policy);
    expect(stages(plan)).toEqual([['test', 0], ['a', 1], ['b', 1], ['d', 2]]);
  });

  it('a `batch` slave is never the canary: the next `any` slave is', () => {
    const plan = planRollout([cand('prod', { rollout: { place: 'batch' } }), cand('b'), cand('c')], policy);
    expect(stages(plan)).toEqual([['b', 0], ['prod', 1], ['c', 1]]);
  });

  it('`last` slaves come after every other batch, batched among themselves', () => {
    const plan = planRollout([
      cand('nas', { rollout: { place: 'last' } }), cand('a'), cand('pi', { rollout: { place: 'last' } }), cand('b'), cand('c'), cand('vps', { rollout: { place: 'last' } }),
    ], policy);
    expect(stages(plan)).toEqual([['a', 0], ['b', 1], ['c', 1], ['nas', 2], ['pi', 2], ['vps', 3]]);
  });

  it('with no slave allowed to be the canary the batches start at stage 0', () => {
    const plan = planRollout([cand('a', { rollout: { place: 'batch' } }), cand('b', { rollout: { place: 'last' } })], policy);
    expect(stages(plan)).toEqual([['a', 0], ['b', 1]]);
  });

  it('keeps a slave\'s own healthyForSeconds on its member, and its gate waits that long', () => {
    const plan = planRollout([cand('a', { rollout: { place: 'any', healthyForSeconds: 120 } }), cand('b')], policy);
    expect(plan.map((m) => [m.slave, m.healthy_for_seconds])).toEqual([['a', 120], ['b', null]]);
    const since = new Date(T0).toISOString();
    const r = rollout([{ ...member('a', 0, 'gate', since), healthy_for_seconds: 120 }]);
    expect(decideRollout({ rollout: r, seen: seen([['a', healthy]]), busy: new Set(), now: T0 + 60_000 })).toEqual([]);
    expect(decideRollout({ rollout: r, seen: seen([['a', healthy]]), busy: new Set(), now: T0 + 120_000 })).toEqual([{ kind: 'pass', slave: 'a' }]);
  });

  it('is validated in the stack config: defaults filled, a bad place or gate names its key', () => {
    const slaves = (rollout: unknown) => ({ slaves: [{ name: 'a', host: 'local', rollout }] });
    expect(resolveFleetConfig(slaves({ healthyForSeconds: 5 }), { stack: 't', env: {} }).slaves[0].rollout).toEqual({ place: 'any', healthyForSeconds: 5 });
    expect(resolveFleetConfig({ slaves: [{ name: 'a', host: 'local' }] }, { stack: 't', env: {} }).slaves[0].rollout).toBeUndefined();
    expect(() => resolveFleetConfig(slaves({ place: 'first' }), { stack: 't', env: {} })).toThrow(/d8:slaves\[0\] \(a\)\.rollout\.place Invalid enum value/);
    expect(() => resolveFleetConfig(slaves({ healthyForSeconds: -1 }), { stack: 't', env: {} })).toThrow(/d8:slaves\[0\] \(a\)\.rollout\.healthyForSeconds/);
    expect(() => resolveFleetConfig(slaves({ canary: true }), { stack: 't', env: {} })).toThrow(ConfigError);
  });
});

describe('decideRollout', () => {
  it('deploys the pending members of the current stage only', () => {
    const r = rollout([member('a', 0, 'pending'), member('b', 1, 'pending')]);
    expect(decideRollout({ rollout: r, seen: seen([]), busy: new Set(), now: T0 })).toEqual([{ kind: 'deploy', slave: 'a' }]);
  });

  it('waits healthyForSeconds in the gate, then passes, then starts the next stage', () => {
    const since = new Date(T0).toISOString();
    const r = rollout([member('a', 0, 'gate', since), member('b', 1, 'pending')]);
    expect(decideRollout({ rollout: r, seen: seen([['a', healthy]]), busy: new Set(), now: T0 + 29_999 })).toEqual([]);
    expect(decideRollout({ rollout: r, seen: seen([['a', healthy]]), busy: new Set(), now: T0 + 30_000 })).toEqual([{ kind: 'pass', slave: 'a' }]);
    const passed = rollout([member('a', 0, 'passed', since), member('b', 1, 'pending')]);
    expect(decideRollout({ rollout: passed, seen: seen([]), busy: new Set(), now: T0 })).toEqual([{ kind: 'advance', stage: 1 }]);
  });

  it('fails a gate member that is not healthy at the commit (a flap), or reports another commit', () => {
    const since = new Date(T0).toISOString();
    const r = rollout([member('a', 0, 'gate', since)]);
    expect(decideRollout({ rollout: r, seen: seen([['a', { state: 'pending', commit: C }]]), busy: new Set(), now: T0 + 1000 }))
      .toEqual([{ kind: 'fail', slave: 'a', why: 'is pending during the health gate' }]);
    expect(decideRollout({ rollout: r, seen: seen([['a', { state: 'healthy', commit: OLD }]]), busy: new Set(), now: T0 + 1000 }))
      .toEqual([{ kind: 'fail', slave: 'a', why: 'reports aaaaaaa during the health gate' }]);
  });

  it('after a restart: an updating member already at the commit enters its gate, one that is not is deployed again', () => {
    const r = rollout([member('a', 0, 'updating'), member('b', 0, 'updating')]);
    expect(decideRollout({ rollout: r, seen: seen([['a', healthy], ['b', { state: 'dead', commit: null }]]), busy: new Set(), now: T0 }))
      .toEqual([{ kind: 'start_gate', slave: 'a' }, { kind: 'deploy', slave: 'b' }]);
  });

  it('leaves a member alone while its task runs, and a paused or halted rollout only rolls back failed members', () => {
    const r = rollout([member('a', 0, 'pending')]);
    expect(decideRollout({ rollout: r, seen: seen([]), busy: new Set(['a']), now: T0 })).toEqual([]);
    const halted = rollout([member('a', 0, 'failed'), member('b', 1, 'pending')], { status: 'halted' });
    expect(decideRollout({ rollout: halted, seen: seen([]), busy: new Set(), now: T0 })).toEqual([{ kind: 'rollback', slave: 'a' }]);
    expect(decideRollout({ rollout: rollout([member('b', 0, 'pending')], { status: 'paused' }), seen: seen([]), busy: new Set(), now: T0 })).toEqual([]);
  });

  it('completes after the last stage settles', () => {
    const r = rollout([member('a', 0, 'passed'), member('b', 1, 'rolled_back')], { stage: 1 });
    expect(decideRollout({ rollout: r, seen: seen([]), busy: new Set(), now: T0 })).toEqual([{ kind: 'complete' }]);
  });
});

describe('d8:rollout in the stack config', () => {
  it('fills the defaults and names the key of a bad value', () => {
    const c = resolveFleetConfig({ rollout: { canary: 2 } }, { stack: 't', env: {} });
    expect(c.rollout).toEqual({ canary: 2, batchSize: 2, healthyForSeconds: 30, maxFailures: 1 });
    expect(() => resolveFleetConfig({ rollout: { batchSize: 0 } }, { stack: 't', env: {} })).toThrow(ConfigError);
    expect(() => resolveFleetConfig({ rollout: { batchSize: 0 } }, { stack: 't', env: {} })).toThrow(/d8:rollout.batchSize/);
  });
});
