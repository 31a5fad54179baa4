/** The system tier's infrastructure check; the host helpers live in scripts/test-hosts/hosts.ts. */
import { spawnSync } from 'child_process';
import fs from 'fs';
import type { TierCheck } from '../../support/tier';
import { BASE_IMAGE, type TestHost } from '../../../scripts/test-hosts/hosts';

export * from '../../../scripts/test-hosts/hosts';

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export const systemTier: TierCheck = {
  tier: 'system',
  enable: 'run `sudo sh scripts/ci-setup-system.sh` (sshd test hosts, python3-venv, docker engine, d8-base image) and run jest as root',
  missing: () => {
    if (process.getuid?.() !== 0) return 'not running as root (the test hosts are unix users with their own sshd)';
    if (!fs.existsSync('/usr/sbin/sshd')) return 'no /usr/sbin/sshd (apt-get install openssh-server)';
    if (!run('unshare', ['--version']).ok) return 'no unshare (util-linux)';
    if (!fs.existsSync('/usr/bin/python3')) return 'no /usr/bin/python3 (apt-get install python3 python3-venv)';
    if (!run('docker', ['info']).ok) return 'no usable Docker engine (apt-get install docker.io; start dockerd)';
    if (!run('docker', ['image', 'inspect', BASE_IMAGE]).ok) return `no ${BASE_IMAGE} image (sh scripts/docker-base-image.sh)`;
    return null;
  },
};


/** A stack file's text with one slave, `box`, on a test host with the venv strategy. */
export function oneSlaveStack(sshKeyPath: string, host: TestHost, agentPort: number): string {
  return `config:
  d8:sshKeyPath: ${sshKeyPath}
  d8:installDelaySeconds: 1
  d8:dashboard: { enabled: false }
  d8:slaves:
    - { name: box, host: ${host.host}, user: ${host.user}, sshPort: ${host.port}, agentPort: ${agentPort}, strategies: [venv] }
`;
}
