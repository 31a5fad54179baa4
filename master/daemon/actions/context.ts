/** What every action module gets from the sweep loop: the store, the deployer, the agent client, and a re-check. */
import type { Logger } from '../../../core/logger';
import type { FleetConfig, SlaveConfig } from '../../../core/stack-config';
import type { HealthResponse } from '../../../core/protocol';
import type { Store } from '../../store';
import type { SlaveRecord } from '../../store/slaves';
import type { AgentClient } from '../../agent-client';
import type { DeployCoordinator } from '../../deploy/coordinator';
import type { Tuning } from '../tuning';

export interface ActionContext {
  readonly config: FleetConfig;
  readonly stack: string;
  readonly store: Store;
  readonly deploys: Pick<DeployCoordinator, 'engine' | 'deploy' | 'installsGivenBundles' | 'releaseBundle'>;
  readonly client: AgentClient;
  readonly log: Logger;
  readonly tuning: Tuning;
  /** The master's commit now. */
  masterCommit(): string;
  /** Whether deploying this slave needs an SSH key the master does not have. */
  sshKeyMissing(slave: SlaveConfig): boolean;
  /** Checks the slave now, contacting it directly (past an open breaker), and records the result (state, alerts) like a sweep does. */
  checkAndRecord(slave: SlaveConfig, masterCommit: string): Promise<SlaveRecord>;
  /** Waits up to `timeoutMs` (or until the daemon stops) for the agent to answer and satisfy `accept`. */
  awaitAgent(slave: SlaveConfig, timeoutMs: number, accept?: (h: HealthResponse) => boolean): Promise<boolean>;
}
