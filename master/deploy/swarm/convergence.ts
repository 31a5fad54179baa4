/**
 * After `pulumi up` changed the slaves' swarm services (it returns as soon as the swarm accepted the
 * specs), D8 waits for the release to converge: every slave's service runs the new image on its node
 * and every slave's agent reports the release's commit, or the swarm's own verdict on one of them
 * (`rollback_*`, `paused`) fails it, naming that slave's service. Used by the pulumi deployer
 * (`d8 up`, the daemon's updates) and meant for the rollout gate.
 */
import type { SlaveConfig } from '../../../core/stack-config';
import { DeployError, type DeployErrorKind } from '../../../core/deploy-result';
import { swarmServiceName } from '../../../infra/swarm-spec';
import type { DockerRunner } from '../../../infra/swarm-docker';
import { AgentClient } from '../../agent-client';
import { readTaskCertificate, type TaskCertificate } from './agent-fingerprint';
import {
  judgeConvergence, judgeFleetConvergence, NodeLineSchema, ServiceInspectSchema, TaskInspectSchema, TaskLineSchema,
  type AgentReport, type ConvergenceVerdict, type SwarmSnapshot,
} from './service-state';

export type ConvergenceFailure = Exclude<ConvergenceVerdict['kind'], 'converged' | 'waiting'> | 'timeout' | 'missing';

/** The release did not converge; `reason` says how (a rollback gate acts on it, never on the text). */
export class SwarmConvergenceError extends DeployError {
  constructor(message: string, readonly reason: ConvergenceFailure, kind: DeployErrorKind) {
    super(message, kind);
    this.name = 'SwarmConvergenceError';
  }
}

const KIND_OF: Record<ConvergenceFailure, DeployErrorKind> = {
  rolled_back: 'install_failed', paused: 'install_failed', timeout: 'timeout', wrong_release: 'engine', missing: 'engine',
};

/** A slave's agent health, spoken to with `tlsFingerprint` pinned (null: plain HTTP), as its task's start-up line said. */
export type HealthOf = (slave: SlaveConfig & { tlsFingerprint: string | null }) => Promise<AgentReport>;

/** The certificate each running task's agent logged, by task ID (a task's agent keeps its pair for the task's life). */
export type CertificateCache = Map<string, TaskCertificate>;

export interface ConvergenceOptions {
  docker: DockerRunner;
  commit: string;
  /** The slaves whose services and agents must run the commit (swarm mode: every slave of d8:slaves). */
  slaves: SlaveConfig[];
  /** A slave's service name (default swarmServiceName). */
  serviceOf?: (slave: string) => string;
  /** Default: 2 minutes plus 90 s per slave (one service at a time: stop, start, health, monitor). */
  timeoutMs?: number;
  pollMs?: number;
  health?: HealthOf;
  onProgress?: (why: string) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface ConvergenceReport {
  commit: string;
  why: string;
  ms: number;
  /**
   * The certificate each slave's agent serves, read from the manager (agent-fingerprint.ts), by
   * slave name: the master pins it. null: that agent speaks plain HTTP.
   */
  fingerprints: Record<string, string | null>;
}

function jsonLines<T>(text: string, parse: (v: unknown) => T): T[] {
  return text.split('\n').filter((l) => l.trim()).map((l) => parse(JSON.parse(l)));
}

async function must(docker: DockerRunner, args: string[]): Promise<string> {
  const r = await docker(args);
  if (r.code !== 0) throw new DeployError(`\`docker ${args.slice(0, 3).join(' ')}\` on the swarm manager failed: ${r.stderr.trim() || `exit ${r.code}`}`, 'engine');
  return r.stdout;
}

/** The certificate of the slave's running task's agent, from the manager (cached per task). */
async function taskCertificate(docker: DockerRunner, tasks: SwarmSnapshot['tasks'], certs: CertificateCache): Promise<TaskCertificate> {
  const task = tasks.find((t) => t.DesiredState === 'running' && t.Status.State === 'running');
  if (!task) return { scheme: 'none' };
  const known = certs.get(task.ID);
  if (known) return known;
  const cert = await readTaskCertificate(docker, task.ID);
  if (cert.scheme !== 'none') certs.set(task.ID, cert);
  return cert;
}

/** The swarm's nodes as `docker node ls` prints them: asked once per look at the fleet, not per slave. */
async function nodeList(docker: DockerRunner): Promise<SwarmSnapshot['nodes']> {
  return jsonLines(await must(docker, ['node', 'ls', '--format', '{{json .}}']), (v) => NodeLineSchema.parse(v));
}

/** One look at a slave's service, its tasks and its agent (spoken to with the certificate its task logged pinned), with the nodes of this look. */
export async function swarmSnapshot(docker: DockerRunner, service: string, slave: SlaveConfig, health: HealthOf,
  nodes: SwarmSnapshot['nodes'], certs: CertificateCache = new Map()): Promise<SwarmSnapshot & { certificate: TaskCertificate }> {
  const inspect = await docker(['service', 'inspect', service, '--format', '{{json .}}']);
  if (inspect.code !== 0) {
    throw new SwarmConvergenceError(`${slave.name}'s service ${service} does not exist on the swarm (${inspect.stderr.trim() || `exit ${inspect.code}`}): deploy it with \`pulumi up\``, 'missing', 'engine');
  }
  const svc = ServiceInspectSchema.parse(JSON.parse(inspect.stdout));
  const ids = (await must(docker, ['service', 'ps', service, '-q', '--no-trunc', '--filter', 'desired-state=running'])).split(/\s+/).filter(Boolean);
  const tasks = ids.length ? jsonLines(await must(docker, ['inspect', '--format', '{{json .}}', ...ids]), (v) => TaskInspectSchema.parse(v)) : [];
  const failures = jsonLines(await must(docker, ['service', 'ps', service, '--no-trunc', '--format', '{{json .}}', '--filter', 'desired-state=shutdown']), (v) => TaskLineSchema.parse(v));
  const certificate = await taskCertificate(docker, tasks, certs);
  const agent = certificate.scheme === 'none'
    ? { slave: slave.name, commit: null, error: tasks.length ? 'its start-up line, with its certificate, is not in the task\'s logs yet' : 'no running task' }
    : await health({ ...slave, tlsFingerprint: certificate.fingerprint });
  return { service: svc, tasks, nodes, failures, agent, certificate };
}

type SlaveVerdict = { slave: SlaveConfig; verdict: ConvergenceVerdict; certificate: TaskCertificate };

/** Every slave's verdict, in the slaves' order. */
async function slaveVerdicts(o: Pick<ConvergenceOptions, 'docker' | 'commit' | 'slaves' | 'serviceOf'>, health: HealthOf,
  certs: CertificateCache = new Map()): Promise<SlaveVerdict[]> {
  const serviceOf = o.serviceOf ?? swarmServiceName;
  const nodes = await nodeList(o.docker);
  return Promise.all(o.slaves.map(async (slave) => {
    const snapshot = await swarmSnapshot(o.docker, serviceOf(slave.name), slave, health, nodes, certs);
    return { slave, verdict: judgeConvergence(snapshot, o.commit), certificate: snapshot.certificate };
  }));
}

export function agentHealth(client: AgentClient): HealthOf {
  return async (slave) => {
    const h = await client.health(slave);
    return h.ok ? { slave: slave.name, commit: h.health.commit } : { slave: slave.name, commit: null, error: h.error };
  };
}

/** One look: which slaves' services run the release right now (no waiting)? */
export async function convergedNow(o: Pick<ConvergenceOptions, 'docker' | 'commit' | 'slaves' | 'serviceOf' | 'health'>): Promise<SlaveVerdict[]> {
  const client = o.health ? null : new AgentClient({ deadlineMs: 5_000 });
  try {
    return await slaveVerdicts(o, o.health ?? agentHealth(client!));
  } finally {
    client?.close();
  }
}

/** Waits until the release converges on every slave; throws SwarmConvergenceError when one cannot or does not in time. */
export async function awaitSwarmConvergence(o: ConvergenceOptions): Promise<ConvergenceReport> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const timeoutMs = o.timeoutMs ?? 120_000 + 90_000 * Math.max(1, o.slaves.length);
  const started = now();
  const client = o.health ? null : new AgentClient({ deadlineMs: 5_000 });
  const health = o.health ?? agentHealth(client!);
  const certs: CertificateCache = new Map();
  let last = '';
  try {
    for (;;) {
      const verdicts = await slaveVerdicts(o, health, certs);
      const verdict = judgeFleetConvergence(verdicts.map((v) => v.verdict), o.commit);
      if (verdict.kind === 'converged') {
        // Every agent answered with the certificate its task logged pinned: the one to record.
        const fingerprints = Object.fromEntries(verdicts.map((v) => [v.slave.name, v.certificate.scheme === 'https' ? v.certificate.fingerprint : null]));
        return { commit: o.commit, why: verdict.why, ms: now() - started, fingerprints };
      }
      if (verdict.kind !== 'waiting') throw new SwarmConvergenceError(verdict.why, verdict.kind, KIND_OF[verdict.kind]);
      if (verdict.why !== last) o.onProgress?.(verdict.why);
      last = verdict.why;
      if (now() - started >= timeoutMs) {
        throw new SwarmConvergenceError(`release ${o.commit.slice(0, 7)} did not converge within ${Math.round(timeoutMs / 1000)}s: ${verdict.why}`, 'timeout', 'timeout');
      }
      await sleep(o.pollMs ?? 3_000);
    }
  } finally {
    client?.close();
  }
}

/**
 * Restarts a slave's agent: a forced update of its service (its one task, on its node); the caller
 * then waits for convergence as after any update.
 */
export async function forceServiceUpdate(docker: DockerRunner, service: string,
  o: { waitMs?: number; sleep?: (ms: number) => Promise<void> } = {}): Promise<void> {
  const startedAt = async (): Promise<string> => (await must(docker, ['service', 'inspect', service, '--format', '{{if .UpdateStatus}}{{.UpdateStatus.StartedAt}}{{end}}'])).trim();
  const before = await startedAt();
  await must(docker, ['service', 'update', '--force', '--detach', service]);
  // The swarm starts the update asynchronously: until it has, the previous update's state would be judged.
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = Date.now() + (o.waitMs ?? 30_000);
  while (await startedAt() === before) {
    if (Date.now() >= deadline) throw new DeployError(`the swarm did not start the forced update of service ${service} within ${Math.round((o.waitMs ?? 30_000) / 1000)}s`, 'engine');
    await sleep(500);
  }
}
