/** Pure logic of the master: state machine, alert decisions, drift classes, breaker, backoff, tuning, stale locks, URNs. */
import { nextState, alertFor } from '../../master/checker/state-machine';
import { classifyAncestry } from '../../master/checker/drift';
import { CircuitBreaker } from '../../master/checker/breaker';
import { backoffDelay } from '../../master/backoff';
import { tuningFromEnv, TuningError } from '../../master/daemon/tuning';
import { judgeLock, fileBackendDir } from '../../master/deploy/pulumi/stale-lock';
import { targetedUpOptions } from '../../master/deploy/pulumi/up-options';
import { strategyFromOutputs } from '../../master/deploy/pulumi/pulumi-deployer';
import { slaveUrns } from '../../infra/urns';
import { chooseEngine } from '../../master/deploy/select';

describe('state machine (Uptime-Kuma style)', () => {
  const opts = { deadAfter: 3 };
  it('a failure goes pending, then dead after deadAfter consecutive failures', () => {
    let s = { state: 'healthy' as const, failures: 0 } as ReturnType<typeof nextState>;
    s = nextState(s, { ok: false, error: 'x' }, opts);
    expect(s).toEqual({ state: 'pending', failures: 1 });
    s = nextState(s, { ok: false, error: 'x' }, opts);
    expect(s.state).toBe('pending');
    s = nextState(s, { ok: false, error: 'x' }, opts);
    expect(s).toEqual({ state: 'dead', failures: 3 });
    s = nextState(s, { ok: true, commit: 'c', drift: 'equal' }, opts);
    expect(s).toEqual({ state: 'healthy', failures: 0 });
  });
  it('an answer with another commit is a version mismatch whatever the drift', () => {
    for (const drift of ['behind', 'ahead', 'diverged', 'unknown'] as const) {
      expect(nextState({ state: 'unknown', failures: 0 }, { ok: true, commit: 'c', drift }, opts).state).toBe('version_mismatch');
    }
  });
});

describe('alert decisions', () => {
  const none = { alertKind: null, alertAt: null, alertKey: null };
  it('alerts on entering a bad state, not while it lasts, again after the resend interval', () => {
    expect(alertFor('dead', null, none, 1000, 60_000)).toEqual({ kind: 'slave_dead', resend: false });
    const sent = { alertKind: 'slave_dead' as const, alertAt: 1000, alertKey: null };
    expect(alertFor('dead', null, sent, 30_000, 60_000)).toBeNull();
    expect(alertFor('dead', null, sent, 61_000, 60_000)).toEqual({ kind: 'slave_dead', resend: true });
  });
  it('pending never alerts; recovery alerts once, only after a bad-state alert', () => {
    expect(alertFor('pending', null, none, 0, 1)).toBeNull();
    expect(alertFor('healthy', null, none, 0, 1)).toBeNull();
    expect(alertFor('healthy', null, { alertKind: 'slave_dead', alertAt: 0, alertKey: null }, 5, 1)).toEqual({ kind: 'slave_recovered', resend: false });
  });
  it('a mismatch on a new commit is a new alert', () => {
    const mem = { alertKind: 'version_mismatch' as const, alertAt: 0, alertKey: 'behind:a:m' };
    expect(alertFor('version_mismatch', 'behind:a:m', mem, 10, 1000)).toBeNull();
    expect(alertFor('version_mismatch', 'behind:b:m', mem, 10, 1000)).toEqual({ kind: 'version_mismatch', resend: false });
    expect(alertFor('dead', null, mem, 10, 1000)).toEqual({ kind: 'slave_dead', resend: false });
  });
});

describe('drift classes', () => {
  const base = { slaveKnown: true, same: false, slaveIsAncestor: false, masterIsAncestor: false };
  it.each([
    [{ ...base, same: true }, 'equal'],
    [{ ...base, slaveIsAncestor: true }, 'behind'],
    [{ ...base, masterIsAncestor: true }, 'ahead'],
    [base, 'diverged'],
    [{ ...base, slaveKnown: false }, 'unknown'],
  ])('%j -> %s', (a, d) => expect(classifyAncestry(a)).toBe(d));
});

describe('circuit breaker', () => {
  it('opens after the threshold, lets one probe through when half-open, closes on success', () => {
    const b = new CircuitBreaker({ failureThreshold: 3, openMs: 1000 });
    for (let i = 0; i < 2; i++) { expect(b.allow(0)).toBe(true); b.failure(0); }
    expect(b.state(0)).toBe('closed');
    b.failure(10);
    expect(b.state(10)).toBe('open');
    expect(b.allow(500)).toBe(false);
    expect(b.state(1010)).toBe('half_open');
    expect(b.allow(1010)).toBe(true);
    expect(b.allow(1011)).toBe(false); // one probe at a time
    b.failure(1020);
    expect(b.state(1500)).toBe('open');
    expect(b.allow(2020)).toBe(true);
    b.success();
    expect(b.state(2021)).toBe('closed');
    expect(b.consecutiveFailures()).toBe(0);
  });
});

describe('backoff', () => {
  it('doubles up to the cap; jitter stays within bounds', () => {
    const o = { baseMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, o))).toEqual([100, 200, 400, 800, 1000, 1000]);
    for (const r of [0, 0.5, 0.999]) {
      const d = backoffDelay(3, { ...o, jitter: 0.5 }, () => r);
      expect(d).toBeGreaterThanOrEqual(300);
      expect(d).toBeLessThanOrEqual(500);
    }
  });
});

describe('D8_MASTER_TUNING', () => {
  it('defaults, overrides, and names the bad key', () => {
    expect(tuningFromEnv({}).breakerFailures).toBe(5);
    expect(tuningFromEnv({}).breakerOpenMs).toBe(60_000);
    expect(tuningFromEnv({ D8_MASTER_TUNING: '{"deadAfter":2}' }).deadAfter).toBe(2);
    expect(() => tuningFromEnv({ D8_MASTER_TUNING: '{"deadAftr":2}' })).toThrow(/deadAftr/);
    expect(() => tuningFromEnv({ D8_MASTER_TUNING: '{"deadAfter":0}' })).toThrow(TuningError);
    expect(() => tuningFromEnv({ D8_MASTER_TUNING: 'nope' })).toThrow(/not valid JSON/);
  });
});

describe('stale pulumi locks', () => {
  const lock = { pid: 4242, hostname: 'pi', timestamp: new Date(0).toISOString(), file: '/x.json' };
  it('is stale only when its holder on this host is gone (or it is very old elsewhere)', () => {
    expect(judgeLock(lock, { hostname: 'pi', alive: () => false }).stale).toBe(true);
    expect(judgeLock(lock, { hostname: 'pi', alive: () => true }).stale).toBe(false);
    const recent = { ...lock, timestamp: new Date(1_000_000).toISOString() };
    expect(judgeLock(recent, { hostname: 'other', now: 1_000_000 + 60_000, alive: () => false }).stale).toBe(false);
    expect(judgeLock(recent, { hostname: 'other', now: 1_000_000 + 7 * 3600_000, alive: () => false }).stale).toBe(true);
  });
  it('only file:// backends have inspectable locks', () => {
    expect(fileBackendDir('file:///var/pulumi')).toBe('/var/pulumi');
    expect(fileBackendDir('https://api.pulumi.com')).toBeNull();
  });
});

describe('pulumi deployer: targeted up', () => {
  it.each([true, false])('targets and replaces exactly the URNs of infra/urns.ts (local=%s)', (local) => {
    const urns = slaveUrns('prod', 'pc-leo', { local });
    const o = targetedUpOptions('prod', { name: 'pc-leo', local });
    expect(o.target).toContain(urns.component);
    expect(o.target.every((t) => Object.values(urns).includes(t))).toBe(true);
    expect(o.replace).toEqual([urns.bundle, urns.install]);
    expect(o.targetDependents).toBe(true);
  });
  it('reads the winning strategy from stack outputs', () => {
    expect(strategyFromOutputs({ strategies: { value: { a: 'venv' } } }, 'a')).toBe('venv');
    expect(strategyFromOutputs({ slaves: { value: { a: { strategy: 'docker' } } } }, 'a')).toBe('docker');
    expect(strategyFromOutputs({ strategies: { value: { a: 'bogus' } } }, 'a')).toBeNull();
  });
  it('chooses pulumi only when a CLI is on PATH, unless told', () => {
    expect(chooseEngine('auto', { PATH: '/nonexistent' }).engine).toBe('direct');
    expect(chooseEngine('pulumi', { PATH: '/nonexistent' }).engine).toBe('pulumi');
  });
});
