/**
 * Swarm mode, after the targeted `pulumi up` of the SwarmAgent: a forced deploy (the daemon's
 * redeploy of a dead slave, `d8 up --force`) that changed nothing restarts the tasks with a forced
 * service update, and then, whatever happened, the release must converge (master/deploy/swarm):
 * a deploy succeeds only once every node's agent reports the release's commit. The swarm cannot
 * restart one task, and a forced update restarts every node's in turn, so it is done only when the
 * release has not converged (a dead or lagging agent), never to a healthy fleet for one slave's sake.
 */
import { DeployError } from '../../../core/deploy-result';
import type { FleetConfig } from '../../../core/stack-config';
import { managerDocker, SwarmManagerError, type DockerRunner } from '../../../infra/swarm-docker';
import { parseSwarmManager } from '../../../infra/swarm-spec';
import { awaitSwarmConvergence, convergedNow, forceServiceUpdate, type ConvergenceOptions } from '../swarm';

export interface SwarmSettleOptions extends Partial<Pick<ConvergenceOptions, 'service' | 'timeoutMs' | 'pollMs' | 'health' | 'onProgress'>> {
  /** The manager's docker (default: over ssh to d8:swarm with d8:sshKeyPath). */
  docker?: DockerRunner;
}

export interface Settled {
  forced: boolean;
  why: string;
}

export async function settleSwarm(config: FleetConfig, outputs: Record<string, { value: unknown }>,
  run: { force: boolean; changed: boolean }, o: SwarmSettleOptions = {}): Promise<Settled> {
  const commit = outputs.commit?.value;
  if (typeof commit !== 'string') throw new DeployError('the stack has no `commit` output: is this the d8 program in swarm mode?', 'engine');
  const docker = o.docker ?? managerDocker(parseSwarmManager(config.swarm!), { sshKeyPath: config.sshKeyPath });
  try {
    const forced = run.force && !run.changed &&
      (await convergedNow({ docker, commit, slaves: config.slaves, service: o.service, health: o.health })).kind !== 'converged';
    if (forced) await forceServiceUpdate(docker, o.service);
    const report = await awaitSwarmConvergence({ ...o, docker, commit, slaves: config.slaves });
    return { forced, why: report.why };
  } catch (err) {
    if (err instanceof SwarmManagerError) throw new DeployError(err.message, 'connect');
    throw err;
  }
}
