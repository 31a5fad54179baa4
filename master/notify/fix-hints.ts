/**
 * What a person should do about a failure of each kind: shared by the escalation request the master
 * files and the notifiers that format the failure.
 */
import type { FailureKind } from '../../core/alerts';

export const SSH_KEY_FIX = 'set D8_SSH_KEY_PATH (or D8_SSH_PRIVATE_KEY, or d8:sshKeyPath in the stack file) for the master and restart it';

export function fixFor(kind: FailureKind | null | undefined, slave: string): string | null {
  switch (kind) {
    case 'no_ssh_key': return `The master has no SSH key, so it cannot redeploy ${slave}: ${SSH_KEY_FIX}.`;
    case 'auth': return `The SSH login to ${slave} was refused: add the master's public key to the user's ~/.ssh/authorized_keys on the host, or point D8_SSH_KEY_PATH / d8:sshKeyPath at the right key.`;
    case 'host_key': return `${slave}'s SSH host key is not the one expected: check the host, then update its hostKey in the stack file (or \`d8 trust ${slave}\`).`;
    case 'config': return `The stack config or a secret is missing or wrong for ${slave}: fix it (see the error) and restart the master.`;
    case 'connect': return `The master cannot reach ${slave} over SSH: check that the host is up and its sshd listens on the configured port.`;
    case 'timeout': return `A deploy step on ${slave} overran its limit: check the host's load and network.`;
    case 'install_failed': return `The installer failed on ${slave} with every strategy: see the build log.`;
    case 'unsupported': return `No configured strategy can run on ${slave} (see the error for what the probe found): install node there, add the docker strategy, or use a supported OS and arch.`;
    case 'locked': return `Another process is deploying ${slave} (d8 up, d8 retry or the daemon): let it finish, then try again.`;
    case 'engine': return 'The deploy engine itself failed: see the master\'s log.';
    default: return null;
  }
}
