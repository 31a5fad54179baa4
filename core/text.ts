/** Keeps the last `max` characters of a (multi-line) text, on a line boundary where possible. */
export function tail(text: string | null | undefined, max = 400): string {
  const t = (text ?? '').trim();
  if (t.length <= max) return t;
  const cut = t.slice(t.length - max);
  const nl = cut.indexOf('\n');
  return '…' + (nl >= 0 && nl < max / 2 ? cut.slice(nl + 1) : cut);
}
