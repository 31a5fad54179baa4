/**
 * Swarm mode, after the targeted `pulumi up` of the SwarmAgent: a forced deploy (the daemon's
 * redeploy of a dead slave, `d8 up --force`) that changed nothing restarts, with a forced service
 * update, the service of each slave that has not converged (a dead or lagging agent), never a
 * healthy one; then, whatever happened, the release must converge (master/deploy/swarm): a deploy
 * succeeds only once every slave's agent reports the release's commit.
 */
import { DeployError } from '../../../core/deploy-result';
import type { FleetConfig } from '../../../core/stack-config';
import { managerDocker, SwarmManagerError, type DockerRunner } from '../../../infra/swarm-docker';
import { parseSwarmManager, swarmServiceName } from '../../../infra/swarm-spec';
import { awaitSwarmConvergence, convergedNow, forceServiceUpdate, type ConvergenceOptions } from '../swarm';
import { runningTaskCertificate } from '../swarm/agent-fingerprint';

export interface SwarmSettleOptions extends Partial<Pick<ConvergenceOptions, 'serviceOf' | 'timeoutMs' | 'pollMs' | 'health' | 'onProgress'>> {
  /** The manager's docker (default: over ssh to d8:swarm with d8:sshKeyPath). */
  docker?: DockerRunner;
}

export interface Settled {
  /** Whether a service was restarted. */
  forced: boolean;
  /** The slaves whose services were restarted. */
  restarted: string[];
  why: string;
  /** Each slave's agent certificate as its task logged it, read on the manager once the release converged (null: plain HTTP). */
  fingerprints: Record<string, string | null>;
}

const defaultDocker = (config: FleetConfig): DockerRunner => managerDocker(parseSwarmManager(config.swarm!), { sshKeyPath: config.sshKeyPath });

/**
 * The certificates the slaves' running agents logged, read on the manager (the swarm's record, as
 * the stack's `installs` output is for per-host installs): for a master whose store has no pin for
 * a swarm slave yet (adopt-pins.ts). Slaves whose agent logged none (starting, plain HTTP) are left out.
 */
export async function swarmRecordedPins(config: FleetConfig, slaves: readonly string[], o: SwarmSettleOptions = {}): Promise<Record<string, string>> {
  const docker = o.docker ?? defaultDocker(config);
  const serviceOf = o.serviceOf ?? swarmServiceName;
  const pins: Record<string, string> = {};
  for (const name of slaves) {
    const cert = await runningTaskCertificate(docker, serviceOf(name));
    if (cert.scheme === 'https') pins[name] = cert.fingerprint;
  }
  return pins;
}

export async function settleSwarm(config: FleetConfig, outputs: Record<string, { value: unknown }>,
  run: { force: boolean; changed: boolean }, o: SwarmSettleOptions = {}): Promise<Settled> {
  const commit = outputs.commit?.value;
  if (typeof commit !== 'string') throw new DeployError('the stack has no `commit` output: is this the d8 program in swarm mode?', 'engine');
  const docker = o.docker ?? defaultDocker(config);
  try {
    const serviceOf = o.serviceOf ?? swarmServiceName;
    const restarted = run.force && !run.changed
      ? (await convergedNow({ docker, commit, slaves: config.slaves, serviceOf, health: o.health })).filter((v) => v.verdict.kind !== 'converged').map((v) => v.slave.name)
      : [];
    for (const slave of restarted) await forceServiceUpdate(docker, serviceOf(slave));
    const report = await awaitSwarmConvergence({ ...o, docker, commit, slaves: config.slaves });
    return { forced: restarted.length > 0, restarted, why: report.why, fingerprints: report.fingerprints };
  } catch (err) {
    if (err instanceof SwarmManagerError) throw new DeployError(err.message, 'connect');
    throw err;
  }
}
