/** A JSON value the master's pulumi deployer passes the program in an environment variable, validated. */
import type { z } from 'zod';
import { ConfigError } from '../core/stack-config';

/** The parsed value of `env[name]` (undefined when unset or empty); a bad one is a ConfigError naming the variable. */
export function envJson<T extends z.ZodTypeAny>(env: NodeJS.ProcessEnv, name: string, schema: T, expected: string): z.infer<T> | undefined {
  const text = env[name]?.trim();
  if (!text) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  const r = schema.safeParse(parsed);
  if (!r.success) throw new ConfigError(`${name} must be ${expected} (the master's pulumi deployer sets it); got ${text.slice(0, 120)}: unset it`, name);
  return r.data as z.infer<T>;
}
