/**
 * Before an engine that reports SSH failures only as text (pulumi, through the command provider)
 * runs, one SSH handshake with the same checks as the direct deployer: an unreachable host, a
 * refused key or a wrong host key becomes a typed failure (SlaveConnectError / DeployConfigError)
 * naming the slave and the fix, in about a second instead of after the provider's dial retries.
 */
import type { FleetConfig, SlaveConfig } from '../../core/stack-config';
import { SshShell, sshTarget } from './direct/shell';

export async function sshPreflight(slave: SlaveConfig, config: FleetConfig, readyTimeoutMs = 20_000): Promise<void> {
  const shell = await SshShell.connect(sshTarget(slave, config, readyTimeoutMs));
  await shell.close();
}
