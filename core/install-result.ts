/**
 * The last line install.sh prints: one JSON object. Parsed by the direct deployer, the Pulumi
 * program's outputs and the master, always with this schema.
 */
import { z } from 'zod';
import { StrategySchema } from './protocol';
import { CertFingerprintSchema } from './agent-tls';

export const InstallAttemptSchema = z.object({
  strategy: StrategySchema,
  attempt: z.number().int().min(1),
  ok: z.boolean(),
  exit_code: z.number().int(),
  stderr_tail: z.string(),
  seconds: z.number().nonnegative(),
});
export type InstallAttempt = z.infer<typeof InstallAttemptSchema>;

export const InstallResultSchema = z.object({
  ok: z.boolean(),
  strategy: StrategySchema.nullable(),
  attempts: z.array(InstallAttemptSchema),
  /** SHA-256 of the certificate the agent serves HTTPS with; absent from older installers and with --no-tls. */
  tls_fingerprint: CertFingerprintSchema.optional(),
});
export type InstallResult = z.infer<typeof InstallResultSchema>;

export class InstallOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InstallOutputError';
  }
}

/** Finds and validates the JSON result in install.sh's stdout (its last non-empty line). */
export function parseInstallOutput(stdout: string): InstallResult {
  const lines = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines[lines.length - 1];
  if (!last) throw new InstallOutputError('install.sh printed nothing');
  let json: unknown;
  try {
    json = JSON.parse(last);
  } catch {
    throw new InstallOutputError(`install.sh's last line is not JSON: ${last.slice(0, 200)}`);
  }
  const parsed = InstallResultSchema.safeParse(json);
  if (!parsed.success) {
    throw new InstallOutputError(`install.sh's result does not match the contract: ${parsed.error.issues[0].path.join('.')} ${parsed.error.issues[0].message}`);
  }
  return parsed.data;
}
