/** Budget months are calendar months in UTC ("2026-11"), like the store's timestamps. */
import { MONTH_RE } from '../../core/approval';

export function monthOf(now: number): string {
  return new Date(now).toISOString().slice(0, 7);
}

/** `month` itself when it is a month like 2026-11; a RangeError naming it otherwise. */
export function checkedMonth(month: string): string {
  if (!MONTH_RE.test(month)) throw new RangeError(`"${month}" is not a month like 2026-11`);
  return month;
}
