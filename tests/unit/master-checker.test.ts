/** master/checker: the state machine, alert decisions, drift classes and the circuit breaker (pure). */
import { nextState, alertFor } from '../../master/checker/state-machine';
import { classifyAncestry } from '../../master/checker/drift';
import { CircuitBreaker } from '../../master/checker/breaker';

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
