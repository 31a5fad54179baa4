/**
 * Swarm mode without a Pulumi engine: the direct deployer installs per host over SSH, which is not
 * how a swarm runs the agent. Every deploy fails as a config problem naming the fix, so a master
 * without a Pulumi CLI still monitors the swarm and turns updates into requests for a person.
 */
import type { SlaveConfig } from '../../../core/stack-config';
import type { Deployer, DeployOptions, DeployResult } from '../deployer';

export const SWARM_NEEDS_PULUMI = 'swarm mode (d8:swarm) deploys only through Pulumi: install the Pulumi CLI on the master ' +
  '(https://www.pulumi.com/docs/install/) and use --engine pulumi; the direct engine installs per host';

export class SwarmNeedsPulumi implements Deployer {
  readonly engine = 'direct' as const;

  deploy(slave: SlaveConfig, _opts: DeployOptions): Promise<DeployResult> {
    return Promise.resolve({
      slave: slave.name, engine: 'direct', status: 'failed', ok: false, strategy: null, attempts: [], commit: null,
      buildLogPath: null, error: SWARM_NEEDS_PULUMI, errorKind: 'config', durationMs: 0,
    });
  }
}
