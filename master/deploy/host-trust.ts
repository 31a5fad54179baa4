/** What the master says when it records a slave's SSH host key on first use (both engines). */
import type { HostKey } from '../../core/host-key';
import type { SlaveConfig } from '../../core/stack-config';

export function firstUseMessage(slave: Pick<SlaveConfig, 'name' | 'host' | 'sshPort'>, key: HostKey): string {
  return `${slave.name}: first connection to ${slave.host}:${slave.sshPort}: recorded its SSH host key ${key.type} ${key.fingerprint} in known_hosts ` +
    '(later deploys require this key; check it against `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host)';
}
