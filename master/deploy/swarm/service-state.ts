/**
 * What the swarm says about a slave's agent service, as read from the manager's docker CLI, and the
 * pure judgement of whether a release has converged, per slave and for the fleet. The swarm's update
 * state is the authority on a rollback (a task that failed within the update's monitor window rolls
 * the service back); the agents are the authority on what actually runs (each reports the commit).
 */
import { z } from 'zod';
import { COMMIT_LABEL } from '../../../infra/swarm-spec';

export const ServiceInspectSchema = z.object({
  ID: z.string(),
  Spec: z.object({
    Name: z.string(),
    Labels: z.record(z.string()).nullish(),
    TaskTemplate: z.object({ ContainerSpec: z.object({ Image: z.string() }) }),
  }),
  UpdateStatus: z.object({ State: z.string().optional(), Message: z.string().optional() }).nullish(),
});
export type ServiceInspect = z.infer<typeof ServiceInspectSchema>;

/** One task as `docker inspect <task>` prints it. */
export const TaskInspectSchema = z.object({
  ID: z.string(),
  NodeID: z.string().optional(),
  DesiredState: z.string(),
  Status: z.object({ State: z.string(), Err: z.string().optional() }),
  Spec: z.object({ ContainerSpec: z.object({ Image: z.string() }) }),
});
export type TaskInspect = z.infer<typeof TaskInspectSchema>;

/** One node as `docker node ls --format '{{json .}}'` prints it. */
export const NodeLineSchema = z.object({ ID: z.string(), Hostname: z.string(), Status: z.string(), Availability: z.string() });
export type NodeLine = z.infer<typeof NodeLineSchema>;

/** One line of `docker service ps --format '{{json .}}'` (for the failed tasks' errors). */
export const TaskLineSchema = z.object({ Node: z.string(), Error: z.string(), CurrentState: z.string(), DesiredState: z.string() });
export type TaskLine = z.infer<typeof TaskLineSchema>;

export interface AgentReport {
  slave: string;
  commit: string | null;
  /** Why there is no commit (unreachable, bad answer). */
  error?: string;
}

/** One slave's service as the swarm and its agent see it. */
export interface SwarmSnapshot {
  service: ServiceInspect;
  tasks: TaskInspect[];
  nodes: NodeLine[];
  /** Recent task failures, newest first. */
  failures: TaskLine[];
  agent: AgentReport;
}

export type ConvergenceVerdict =
  | { kind: 'converged'; why: string }
  | { kind: 'waiting'; why: string }
  | { kind: 'rolled_back'; state: string; why: string }
  | { kind: 'paused'; why: string }
  | { kind: 'wrong_release'; why: string };

const ROLLBACK_STATES = new Set(['rollback_started', 'rollback_paused', 'rollback_completed']);

const short = (c: string | null | undefined): string => (c ? c.slice(0, 7) : 'none');

function failureText(failures: TaskLine[]): string {
  const distinct = [...new Set(failures.filter((f) => f.Error.trim()).map((f) => `${f.Node}: ${f.Error.replace(/^"|"$/g, '')}`))];
  return distinct.length ? `; failed tasks: ${distinct.slice(0, 3).join('; ')}` : '';
}

/** Whether the slave's service runs `commit`, is still on its way, or will not get there. */
export function judgeConvergence(s: SwarmSnapshot, commit: string): ConvergenceVerdict {
  const name = s.service.Spec.Name;
  const update = s.service.UpdateStatus ?? null;
  const state = update?.State ?? '';
  const specCommit = s.service.Spec.Labels?.[COMMIT_LABEL] ?? null;
  // A rollback restores the previous spec, labels included: a rollback state under a spec that
  // declares this release is an earlier update's, and the tasks and agents below decide.
  if (ROLLBACK_STATES.has(state) && specCommit !== commit) {
    return {
      kind: 'rolled_back', state,
      why: `the swarm rolled service ${name} back (${state}: ${update?.Message ?? 'no message'}): release ${short(commit)} is not running${failureText(s.failures)}`,
    };
  }
  if (state === 'paused') {
    return { kind: 'paused', why: `the update of service ${name} is paused (${update?.Message ?? 'no message'})${failureText(s.failures)}; \`docker service update --rollback ${name}\` or fix and deploy again` };
  }
  if (specCommit !== commit) {
    return { kind: 'wrong_release', why: `service ${name} is declared for release ${short(specCommit)}, not ${short(commit)} (changed outside Pulumi? run \`pulumi refresh\`, then deploy again)` };
  }
  if (state === 'updating') return { kind: 'waiting', why: `the swarm is still updating service ${name}` };

  const image = s.service.Spec.TaskTemplate.ContainerSpec.Image;
  const task = s.tasks.find((t) => t.DesiredState === 'running');
  if (!task) return { kind: 'waiting', why: `service ${name} has no task yet` };
  const hostname = s.nodes.find((n) => n.ID === task.NodeID)?.Hostname ?? task.NodeID;
  // A task no node can take (its node is down or drained) has none: the swarm's error says why.
  const onNode = hostname ? ` on node ${hostname}` : '';
  if (task.Spec.ContainerSpec.Image !== image) return { kind: 'waiting', why: `node ${hostname ?? '?'} still runs the previous image of ${name}` };
  if (task.Status.State !== 'running') return { kind: 'waiting', why: `the task of ${name}${onNode} is ${task.Status.State}${task.Status.Err ? ` (${task.Status.Err})` : ''}` };
  const a = s.agent;
  if (a.commit !== commit) {
    return { kind: 'waiting', why: `${a.slave}'s agent ${a.commit ? `reports ${short(a.commit)}` : `does not answer${a.error ? ` (${a.error})` : ''}`}, not ${short(commit)}` };
  }
  return { kind: 'converged', why: `${a.slave}: ${name} runs ${short(commit)}${onNode}` };
}

/**
 * The fleet's verdict from every slave's: the first that will not get there (a rollback, a pause, a
 * wrong release: its text names the service, so the slave), else the first still on its way, else
 * converged.
 */
export function judgeFleetConvergence(verdicts: ConvergenceVerdict[], commit: string): ConvergenceVerdict {
  const failed = verdicts.find((v) => v.kind !== 'converged' && v.kind !== 'waiting');
  if (failed) return failed;
  const waiting = verdicts.filter((v) => v.kind === 'waiting');
  if (waiting.length) return { kind: 'waiting', why: waiting.map((v) => v.why).join('; ') };
  return { kind: 'converged', why: `${verdicts.length} slave service(s) run ${short(commit)}; every agent reports it` };
}
