import { AuthLockout, TokenChecker, bearerToken } from '../../agent/auth';

describe('TokenChecker', () => {
  const token = 'Zx8-very-random-agent-token-0123456789';
  const checker = new TokenChecker(token);
  it('accepts exactly the token', () => {
    expect(checker.matches(token)).toBe(true);
  });
  it.each([
    ['empty', ''],
    ['a prefix', token.slice(0, -1)],
    ['a longer string', `${token}x`],
    ['a different case', token.toUpperCase()],
    ['surrounding spaces', ` ${token}`],
  ])('rejects %s', (_n, presented) => {
    expect(checker.matches(presented)).toBe(false);
  });
});

describe('bearerToken', () => {
  it.each([
    ['Bearer abc.def', 'abc.def'],
    ['bearer abc', 'abc'],
    ['BEARER   abc  ', 'abc'],
  ])('%j -> %j', (h, t) => expect(bearerToken(h)).toBe(t));
  it.each([[undefined], [''], ['Basic abc'], ['Bearer'], ['Bearer a b'], ['Bearerabc']])('%j -> null', (h) => {
    expect(bearerToken(h)).toBeNull();
  });
});

describe('AuthLockout', () => {
  let now = 1_000_000;
  const clock = () => now;
  const make = (over: Partial<ConstructorParameters<typeof AuthLockout>[0]> = {}) =>
    new AuthLockout({ maxFailures: 3, windowMs: 10_000, lockoutMs: 60_000, now: clock, ...over });

  beforeEach(() => {
    now = 1_000_000;
  });

  it('locks after maxFailures within the window, for lockoutMs', () => {
    const l = make();
    expect(l.recordFailure('a')).toBe(false);
    expect(l.recordFailure('a')).toBe(false);
    expect(l.lockedFor('a')).toBe(0);
    expect(l.recordFailure('a')).toBe(true);
    expect(l.lockedFor('a')).toBe(60_000);
    now += 59_999;
    expect(l.lockedFor('a')).toBe(1);
    now += 1;
    expect(l.lockedFor('a')).toBe(0);
  });

  it('failures spread beyond the window do not lock', () => {
    const l = make();
    l.recordFailure('a');
    l.recordFailure('a');
    now += 10_001;
    expect(l.recordFailure('a')).toBe(false);
    expect(l.lockedFor('a')).toBe(0);
  });

  it('is per address', () => {
    const l = make();
    for (let i = 0; i < 3; i++) l.recordFailure('a');
    expect(l.lockedFor('a')).toBeGreaterThan(0);
    expect(l.lockedFor('b')).toBe(0);
  });

  it('a success clears the count but not an active lockout', () => {
    const l = make();
    l.recordFailure('a');
    l.recordFailure('a');
    l.recordSuccess('a');
    expect(l.recordFailure('a')).toBe(false);
    l.recordFailure('a');
    l.recordFailure('a');
    expect(l.lockedFor('a')).toBeGreaterThan(0);
    l.recordSuccess('a');
    expect(l.lockedFor('a')).toBeGreaterThan(0);
  });

  it('tracks a bounded number of addresses, keeping active lockouts', () => {
    const l = make({ maxTracked: 100 });
    for (let i = 0; i < 3; i++) l.recordFailure('locked');
    for (let i = 0; i < 1000; i++) l.recordFailure(`10.0.${i >> 8}.${i & 255}`);
    expect(l.tracked).toBeLessThanOrEqual(100);
    expect(l.lockedFor('locked')).toBeGreaterThan(0);
  });

  describe('admit (issue 12, defect 4)', () => {
    it('never refuses a valid token, even from a locked-out address', () => {
      const l = make();
      for (let i = 0; i < 3; i++) expect(l.admit('a', false)).toEqual({ kind: 'invalid' });
      expect(l.lockedFor('a')).toBeGreaterThan(0);
      expect(l.admit('a', true)).toEqual({ kind: 'ok' });
      // The valid attempt does not lift the lockout for the failed ones.
      expect(l.admit('a', false)).toEqual({ kind: 'locked', retryAfterMs: 60_000 });
    });

    it('rate-limits failed attempts while locked, without extending the lockout', () => {
      const l = make();
      for (let i = 0; i < 3; i++) l.admit('a', false);
      now += 30_000;
      for (let i = 0; i < 50; i++) expect(l.admit('a', false)).toEqual({ kind: 'locked', retryAfterMs: 30_000 });
      now += 30_000;
      expect(l.admit('a', false)).toEqual({ kind: 'invalid' });
    });

    it('a valid token clears the failure count of an address that is not locked', () => {
      const l = make();
      l.admit('a', false);
      l.admit('a', false);
      expect(l.admit('a', true)).toEqual({ kind: 'ok' });
      l.admit('a', false);
      l.admit('a', false);
      expect(l.lockedFor('a')).toBe(0);
    });
  });
});
