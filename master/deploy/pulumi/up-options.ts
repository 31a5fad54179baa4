/**
 * What a targeted `pulumi up` for one slave looks like. Pure, so a test can compare it with the
 * Pulumi program's URN function (infra/urns.ts) without a Pulumi CLI.
 */
import { slaveUrns } from '../../../infra/urns';
import type { SlaveConfig } from '../../../core/stack-config';

export interface TargetedUpOptions {
  target: string[];
  targetDependents: true;
  replace: string[];
}

/**
 * `target` = the slave's SlaveHost component, plus its children (so the update can reach them even
 * with a CLI whose target expansion does not follow parents), `targetDependents` for anything built
 * on them, and `replace` = the bundle copy and the install command: `pulumi refresh` cannot see what
 * runs on a host, so without a forced replacement a plain `up` would be a no-op when the config did
 * not change. The bundle is replaced too because the install's delete (uninstall.sh) removes the
 * bundle directory: the engine then runs uninstall, copy, install, in that order (infra/slave-host.ts).
 */
export function targetedUpOptions(stack: string, slave: Pick<SlaveConfig, 'name' | 'local'>, project?: string): TargetedUpOptions {
  const urns = slaveUrns(stack, slave.name, { local: slave.local, project });
  return { target: [urns.component, urns.bundle, urns.install], targetDependents: true, replace: [urns.bundle, urns.install] };
}
