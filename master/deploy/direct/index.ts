/** The direct deployer (node-ssh or a local shell running install.sh); see direct-deployer.ts. */
import type { DeployerContext } from '../deployer';
import { DirectDeployer } from './direct-deployer';

export { DirectDeployer } from './direct-deployer';
export type { DirectDeployerOptions, DeployProgress, DeployPhase, UninstallResult } from './direct-deployer';
export { SlaveConnectError, RemoteCommandError, DeployTimeoutError, HostUnsupportedError } from './errors';

/** Factory used by master/deploy/select.ts (the daemon and `d8 up` pick the engine there). */
export function createDirectDeployer(ctx: DeployerContext): DirectDeployer {
  return new DirectDeployer({ config: ctx.config, repoDir: ctx.repoDir, logger: ctx.logger, pins: ctx.pins });
}
