/** Budget months are calendar months in UTC ("2026-11"), like the store's timestamps. */
import { MONTH_RE } from '../../core/approval';

export function monthOf(now: number): string {
  return new Date(now).toISOString().slice(0, 7);
}

/** [first instant, first instant of the next month) as ISO strings, comparable with the store's timestamps. */
export function monthBounds(month: string): [string, string] {
  if (!MONTH_RE.test(month)) throw new RangeError(`"${month}" is not a month like 2026-11`);
  const [y, m] = month.split('-').map(Number);
  return [new Date(Date.UTC(y, m - 1, 1)).toISOString(), new Date(Date.UTC(y, m, 1)).toISOString()];
}
