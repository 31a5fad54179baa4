/** The daemon's timing: backoff delays and D8_MASTER_TUNING. */
import { backoffDelay } from '../../master/backoff';
import { tuningFromEnv, TuningError } from '../../master/daemon/tuning';

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
