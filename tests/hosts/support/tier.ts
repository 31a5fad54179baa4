/** The hosts tier's infrastructure check; the container hosts live in scripts/test-hosts/containers.ts. */
import { spawnSync } from 'child_process';
import type { TierCheck } from '../../support/tier';
import { missingHostImages } from '../../../scripts/test-hosts/containers';

export * from '../../../scripts/test-hosts/containers';

export const hostsTier: TierCheck = {
  tier: 'hosts',
  enable: 'run `sudo sh scripts/ci-setup-system.sh` (docker engine, d8-base and the d8h-host images: scripts/host-images.sh) and run jest as root',
  missing: () => {
    if (spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 60_000 }).status !== 0) return 'no usable Docker engine (apt-get install docker.io; start dockerd)';
    if (spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' }).error) return 'no ssh-keygen (apt-get install openssh-client)';
    if (spawnSync('ssh', ['-V'], { stdio: 'ignore' }).error) return 'no ssh client (apt-get install openssh-client)';
    return missingHostImages();
  },
};
