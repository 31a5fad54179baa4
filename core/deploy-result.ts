/**
 * What a deploy of one slave ended as, whichever engine ran it. `status` says what happened
 * (`deployed`, `up_to_date`, `failed`); a failure carries an `error_kind` so callers act by kind
 * (an auth or host-key failure is escalated at once, a timeout is retried) and never by message text.
 */
import { z } from 'zod';
import { StrategySchema } from './protocol';
import { InstallAttemptSchema } from './install-result';
import { CertFingerprintSchema } from './agent-tls';

export const DeployEngineSchema = z.enum(['direct', 'pulumi']);
export type DeployEngine = z.infer<typeof DeployEngineSchema>;

export const DeployStatusSchema = z.enum(['deployed', 'up_to_date', 'failed']);
export type DeployStatus = z.infer<typeof DeployStatusSchema>;

/**
 * connect: the host or its sshd cannot be reached · auth: the SSH login or key was refused ·
 * host_key: the host's key is not the one expected · install_failed: install.sh ran and every
 * strategy failed, or the agent did not come up · timeout: a step overran its limit ·
 * config: the stack config or a secret is missing or wrong · engine: the deploy engine itself failed ·
 * unsupported: the probe found that no configured strategy can run on the host (nothing was installed) ·
 * locked: another process holds this slave's deploy lock and the caller chose not to wait (`--no-wait`).
 */
export const DeployErrorKindSchema = z.enum(['connect', 'auth', 'host_key', 'install_failed', 'timeout', 'config', 'engine', 'unsupported', 'locked']);
export type DeployErrorKind = z.infer<typeof DeployErrorKindSchema>;

export const DeployResultSchema = z.object({
  slave: z.string(),
  engine: DeployEngineSchema,
  status: DeployStatusSchema,
  /** status !== 'failed', kept for callers that only need yes or no. */
  ok: z.boolean(),
  /** The strategy that runs the agent, or null when every one failed. */
  strategy: StrategySchema.nullable(),
  attempts: z.array(InstallAttemptSchema),
  /** The commit the agent reports after the deploy (null when unreachable). */
  commit: z.string().nullable(),
  /** JSON build log written for this deploy (secrets replaced by ***). */
  buildLogPath: z.string().nullable(),
  error: z.string().nullable(),
  errorKind: DeployErrorKindSchema.nullable(),
  durationMs: z.number().nonnegative(),
  /**
   * The certificate the installed agent serves (its install result said so): the master pins it.
   * null: the install ran and the agent speaks plain HTTP (the pin is dropped); absent: this deploy
   * did not learn it (up to date, failed), and the pin recorded before stays. A swarm deploy that
   * converged reports the certificate the slave's task logged, read on the manager.
   */
  tlsFingerprint: CertFingerprintSchema.nullable().optional(),
});
export type DeployResult = z.infer<typeof DeployResultSchema>;

/** A failure that knows its kind; deployers throw it and map it once into a DeployResult. */
export class DeployError extends Error {
  constructor(message: string, readonly kind: DeployErrorKind) {
    super(message);
    this.name = 'DeployError';
  }
}
