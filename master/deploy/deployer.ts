/** The one interface every deployer (direct over SSH, pulumi through the Automation API) implements. */
import type { SlaveConfig } from '../../core/stack-config';
import type { Strategy } from '../../core/protocol';
import type { InstallAttempt } from '../../core/install-result';

export type DeployEngine = 'direct' | 'pulumi';

export interface DeployOptions {
  /** Redeploy even when the slave already runs the bundle's commit. */
  force?: boolean;
  /** Why (shown in logs, the build log and alerts): "dead", "behind", "manual", … */
  reason: string;
}

export interface DeployResult {
  slave: string;
  engine: DeployEngine;
  ok: boolean;
  /** The strategy that won, or null when every one failed. */
  strategy: Strategy | null;
  attempts: InstallAttempt[];
  /** The commit the agent reports after the deploy (null when unreachable). */
  commit: string | null;
  /** JSON build log written for this deploy (secrets replaced by ***). */
  buildLogPath: string | null;
  error: string | null;
  durationMs: number;
}

export interface Deployer {
  readonly engine: DeployEngine;
  deploy(slave: SlaveConfig, opts: DeployOptions): Promise<DeployResult>;
}
