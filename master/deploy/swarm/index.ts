/**
 * Swarm mode's convergence check, for every caller that must know whether a release runs on the
 * swarm: the pulumi deployer after each update (`d8 up`, the daemon) and the rollout gate.
 */
export { awaitSwarmConvergence, convergedNow, forceServiceUpdate, SwarmConvergenceError, type ConvergenceFailure, type ConvergenceOptions, type ConvergenceReport } from './convergence';
export { judgeConvergence, type ConvergenceVerdict, type SwarmSnapshot } from './service-state';
export { managerDocker, type DockerRunner } from '../../../infra/swarm-docker';
