/**
 * Before an engine that reports SSH failures only as text (pulumi, through the command provider)
 * runs, one SSH handshake with the same checks as the direct deployer: an unreachable host, a
 * refused key or a wrong host key becomes a typed failure (SlaveConnectError / DeployConfigError)
 * naming the slave and the fix, in about a second instead of after the provider's dial retries.
 * It is also where a new host's key is recorded (trust on first use), before the program pins it.
 */
import type { HostKey } from '../../core/host-key';
import type { FleetConfig, SlaveConfig } from '../../core/stack-config';
import { SshShell, sshTarget } from './direct/shell';

export interface PreflightOptions {
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  onFirstUse?: (key: HostKey) => void;
}

export async function sshPreflight(slave: SlaveConfig, config: FleetConfig, opts: PreflightOptions = {}): Promise<void> {
  const shell = await SshShell.connect(sshTarget(slave, config, { readyTimeoutMs: 20_000, ...opts }));
  await shell.close();
}
