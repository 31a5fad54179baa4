/** The last `max` characters of a text (marked with … when cut), for alerts, errors and summaries. */
export function tail(text: string | null | undefined, max = 400): string {
  if (!text) return '';
  return text.length > max ? '…' + text.slice(-max) : text;
}
