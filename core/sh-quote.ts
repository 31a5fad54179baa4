/** Single-quotes `s` as one POSIX sh word. */
export const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
