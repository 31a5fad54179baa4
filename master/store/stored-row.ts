/**
 * Reading rows that another version of D8 may have written (the `git pull && npm ci` window before
 * a restart, or a downgrade): a row this code cannot parse is set aside — left out of what the
 * caller gets, reported once — never thrown into a sweep. The row itself stays in the store, for
 * the version that can read it.
 */
import type { z } from 'zod';
import type { Logger } from '../../core/logger';
import { createLogger } from '../../core/logger';

export type Parsed<T> = { ok: true; value: T } | { ok: false; invalid: string };

/** `value` checked against `schema`; a failure names the first field and why. */
export function parseStored<S extends z.ZodTypeAny>(schema: S, value: unknown): Parsed<z.output<S>> {
  const p = schema.safeParse(value);
  if (p.success) return { ok: true, value: p.data };
  const i = p.error.issues[0];
  return { ok: false, invalid: `${i.path.join('.') || '(root)'}: ${i.message}` };
}

/** A stored JSON text, parsed and checked against `schema`. */
export function parseStoredJson<S extends z.ZodTypeAny>(schema: S, text: string): Parsed<z.output<S>> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, invalid: `not JSON: ${(err as Error).message}` };
  }
  return parseStored(schema, json);
}

/** Reports each unreadable row once per process (a sweep every 30 s must not log it every time). */
export class SetAside {
  private readonly seen = new Set<string>();
  private logger: Logger | null;

  constructor(logger?: Logger) {
    this.logger = logger ?? null;
  }

  /** Returns true the first time `table`/`key` is reported. */
  report(table: string, key: string | number, invalid: string): boolean {
    const k = `${table}\0${key}`;
    if (this.seen.has(k)) return false;
    this.seen.add(k);
    this.logger ??= createLogger({ name: 'd8-store' });
    this.logger.warn({ table, row: key, err: invalid }, `a ${table} row is not readable by this version (written by another one?): set aside, left in the store`);
    return true;
  }
}
