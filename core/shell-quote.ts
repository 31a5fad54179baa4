/** Single-quotes `s` as one POSIX sh word (the only quoting helper: every shell line we build uses it). */
export const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
