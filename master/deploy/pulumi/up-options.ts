/**
 * What a targeted `pulumi up` for one slave looks like. Pure, so a test can compare it with the
 * Pulumi program's URN function (infra/urns.ts) without a Pulumi CLI.
 */
import { deployUnit, type DeployUnit } from '../../../infra/urns';
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
 * Per-host mode: `target` = the slave's SlaveHost component and its children (so the update can
 * reach them even with a CLI whose target expansion does not follow parents; children not yet in the
 * state are created), `targetDependents` for anything built on them, and `replace` = the bundle copy
 * and the install command that exist: `pulumi refresh` cannot see what runs on a host, so without a
 * forced replacement a plain `up` would be a no-op when the config did not change. The engine refuses
 * to replace a URN that is not in the state, so a new slave gets a plain targeted create. The
 * `<slave>-state` resource is never replaced: its delete is the full clean.
 *
 * Swarm mode: the whole SwarmAgent and never a replace: a new release changes the image name and the
 * service's spec, so the engine's diff decides, and an unchanged release changes nothing. Restarting
 * the tasks is not a Pulumi operation; the deployer does it on the manager (master/deploy/swarm).
 */
export function upOptionsFor(unit: DeployUnit, plan: UpPlan = {}): TargetedUpOptions {
  if (unit.kind === 'swarm') {
    const u = unit.urns;
    const target = [u.component, u.provider, u.image, u.images, ...Object.values(u.tokens), ...Object.values(u.services)];
    // What the state holds under the SwarmAgent and the program no longer declares (the one-service
    // layout's global service and fleet-token secret, a removed slave's service) is deleted only by
    // an up that targets it.
    const gone = [...(plan.existing ?? [])].filter((urn) => urn.startsWith(u.childPrefix) && !target.includes(urn));
    return { target: [...target, ...gone], targetDependents: true, replace: [] };
  }
  const urns = unit.urns;
  const exists = (urn: string): boolean => !plan.existing || plan.existing.has(urn);
  const replace = plan.replace === false ? [] : [urns.bundle, urns.install].filter(exists);
  return { target: [urns.component, urns.state, urns.bundle, urns.install], targetDependents: true, replace };
}

/** The per-host (non-swarm) options for one slave. */
export function targetedUpOptions(stack: string, slave: Pick<SlaveConfig, 'name' | 'local'>, project?: string, plan: UpPlan = {}): TargetedUpOptions {
  return upOptionsFor(deployUnit(stack, slave.name, { swarm: false, local: slave.local, project }), plan);
}
