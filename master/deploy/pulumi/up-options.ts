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

export interface UpPlan {
  /** URNs in the stack's state (default: assume all of the slave's exist). */
  existing?: ReadonlySet<string>;
  /** Force the release's replacement (default true); false lets the engine decide from the diff. */
  replace?: boolean;
}

/**
 * `target` = the slave's SlaveHost component and its children (so the update can reach them even
 * with a CLI whose target expansion does not follow parents; children not yet in the state are
 * created), `targetDependents` for anything built on them, and `replace` = the bundle copy and the
 * install command that exist: `pulumi refresh` cannot see what runs on a host, so without a forced
 * replacement a plain `up` would be a no-op when the config did not change. The engine refuses to
 * replace a URN that is not in the state, so a new slave gets a plain targeted create. The
 * `<slave>-state` resource is never replaced: its delete is the full clean.
 */
export function targetedUpOptions(stack: string, slave: Pick<SlaveConfig, 'name' | 'local'>, project?: string, plan: UpPlan = {}): TargetedUpOptions {
  const urns = slaveUrns(stack, slave.name, { local: slave.local, project });
  const exists = (urn: string): boolean => !plan.existing || plan.existing.has(urn);
  const replace = plan.replace === false ? [] : [urns.bundle, urns.install].filter(exists);
  return { target: [urns.component, urns.state, urns.bundle, urns.install], targetDependents: true, replace };
}
