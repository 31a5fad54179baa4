import { nextSweep, type ScheduleInput } from '../../master/checker/schedule';
import { resolveFleetConfig } from '../../core/stack-config';

const base: ScheduleInput = { now: 100_000, lastFullAt: 90_000, intervalMs: 30_000, retryMs: 5000, failing: false, wake: false };

describe('nextSweep (issue 12: retry interval, wake on HEAD move)', () => {
  it.each<[string, Partial<ScheduleInput>, { kind: string; at: number }]>([
    ['first sweep runs now', { lastFullAt: null }, { kind: 'full', at: 100_000 }],
    ['nothing failing: the next full sweep one interval after the last', {}, { kind: 'full', at: 120_000 }],
    ['a pending slave: re-checked after the retry interval', { failing: true }, { kind: 'retry', at: 105_000 }],
    ['a retry that would land after the full sweep: the full sweep', { failing: true, now: 117_000 }, { kind: 'full', at: 120_000 }],
    ['a full sweep overdue (a slow sweep): now', { now: 130_000 }, { kind: 'full', at: 130_000 }],
    ['a wake-up: a full sweep now, whatever is due', { wake: true, failing: true }, { kind: 'full', at: 100_000 }],
    ['a closed channel: a retry sweep now, before the full sweep due later', { urgent: true }, { kind: 'retry', at: 100_000 }],
    ['a closed channel while a full sweep is overdue: a retry now (the full one follows)', { urgent: true, now: 130_000 }, { kind: 'retry', at: 130_000 }],
    ['a closed channel and a wake-up: the full sweep checks it too', { urgent: true, wake: true }, { kind: 'full', at: 100_000 }],
  ])('%s', (_name, over, plan) => {
    expect(nextSweep({ ...base, ...over })).toEqual(plan);
  });

  it('a slave killed right after a sweep is dead after one interval and two retries, not three intervals', () => {
    // deadAfter 3, interval 30 s, retry 5 s: failures at 30 s, 35 s, 40 s.
    let now = 0;
    let lastFullAt: number | null = null;
    const checks: number[] = [];
    let failures = 0;
    while (failures < 3) {
      const p = nextSweep({ now, lastFullAt, intervalMs: 30_000, retryMs: 5000, failing: failures > 0, wake: false });
      now = p.at;
      if (p.kind === 'full') lastFullAt = now;
      if (now > 0) { failures++; checks.push(now); }
    }
    expect(checks).toEqual([30_000, 35_000, 40_000]);
  });
});

describe('d8:retryIntervalSeconds', () => {
  const resolve = (extra: Record<string, unknown>) => resolveFleetConfig({ slaves: [], ...extra }, { stack: 'dev', env: {} });
  it('defaults to 5 seconds', () => {
    expect(resolve({}).retryIntervalSeconds).toBe(5);
  });
  it('is read from the stack', () => {
    expect(resolve({ retryIntervalSeconds: 2 }).retryIntervalSeconds).toBe(2);
  });
  it('a bad value is an error naming the key', () => {
    expect(() => resolve({ retryIntervalSeconds: 0 })).toThrow(/retryIntervalSeconds/);
  });
});
