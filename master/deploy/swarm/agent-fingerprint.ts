/**
 * A swarm slave's agent certificate, as the master learns it: swarm mode has no install result, so
 * the fingerprint comes from the agent's own start-up line (agent/main.ts logs `tls_fingerprint`
 * when it starts listening), read with `docker service logs` of the slave's running task on the
 * manager.
 *
 * Why this channel can be trusted: the master reaches the manager over SSH with a checked host key
 * (known_hosts, the same channel the deploy and the convergence check use), and the manager gets
 * the task's output from the node's engine over the swarm's mutual TLS (node certificates from the
 * swarm's CA). So the line is what the process in that task wrote, on the node the task runs on,
 * unaltered on the way; nobody on the LAN between the master and the node can change it, which is
 * exactly what the pin guards the agent's HTTPS against.
 * What it does not protect against: whoever controls the manager, the node's engine or a swarm node
 * (a swarm's join token), or runs code inside the task (anyone with the slave's token can, through
 * the agent, and can write a forged start-up line to its output): each of them can also read the
 * private key on the node's volume, so the pin never stood against them.
 */
import { CertFingerprintSchema } from '../../../core/agent-tls';
import { DeployError } from '../../../core/deploy-result';
import type { DockerRunner } from '../../../infra/swarm-docker';

/**
 * What the running task's agent said it serves: `https` with the certificate's fingerprint, `http`
 * (an agent of a release before TLS), or `none`: no start-up line of the agent yet (it is starting).
 */
export type TaskCertificate = { scheme: 'https'; fingerprint: string } | { scheme: 'http'; fingerprint: null } | { scheme: 'none' };

/** `<service>.<slot>.<task id>@<node>    | <line>`: one line of `docker service logs --no-trunc` (not --raw). */
const LOG_LINE = /^(\S+?)@(\S+?)\s+\| ?(.*)$/;

/**
 * The newest start-up line of the agent in task `taskId` in `docker service logs` output (lines of
 * other tasks, and lines that are not the agent's "listening" line, are skipped).
 */
export function certificateFromServiceLogs(text: string, taskId: string): TaskCertificate {
  let found: TaskCertificate = { scheme: 'none' };
  for (const raw of text.split('\n')) {
    const m = LOG_LINE.exec(raw.trimEnd());
    if (!m) continue;
    const task = m[1].slice(m[1].lastIndexOf('.') + 1);
    if (task.length < 12 || !taskId.startsWith(task)) continue;
    let line: unknown;
    try {
      line = JSON.parse(m[3]);
    } catch {
      continue;
    }
    if (!line || typeof line !== 'object') continue;
    const l = line as Record<string, unknown>;
    if (l.name !== 'd8-agent' || l.msg !== 'listening' || !('tls_fingerprint' in l)) continue;
    if (l.tls_fingerprint === null) {
      found = { scheme: 'http', fingerprint: null };
      continue;
    }
    const fp = CertFingerprintSchema.safeParse(l.tls_fingerprint);
    if (fp.success) found = { scheme: 'https', fingerprint: fp.data };
  }
  return found;
}

/** Past this much of a task's logs without the start-up line, it is not there (the agent logs it first). */
export const TASK_LOG_READ_LIMIT = 4 * 1024 * 1024;

/**
 * The certificate the agent of the slave's running task `taskId` serves, read on the manager. The
 * start-up line is at the head of the task's logs: the read stops there (a task that ran for months
 * has a long log, and the unit's heap is small).
 */
export async function readTaskCertificate(docker: DockerRunner, taskId: string): Promise<TaskCertificate> {
  const r = await docker(['service', 'logs', '--no-trunc', taskId], {
    maxBytes: TASK_LOG_READ_LIMIT,
    stopWhen: (out, err) => /"msg":"listening"/.test(out + err) && certificateFromServiceLogs(`${out}\n${err}`, taskId).scheme !== 'none',
  });
  if (r.code !== 0) {
    throw new DeployError(`\`docker service logs ${taskId}\` on the swarm manager failed: ${r.stderr.trim() || `exit ${r.code}`} ` +
      '(the agent\'s certificate is read from its start-up line: the node\'s engine must keep container logs with the json-file, local or journald driver)', 'engine');
  }
  // The agent logs to stderr; the CLI passes each stream on as its own.
  return certificateFromServiceLogs(`${r.stdout}\n${r.stderr}`, taskId);
}

/** The certificate the agent of the service's running task logged (`none` when no task runs). */
export async function runningTaskCertificate(docker: DockerRunner, service: string): Promise<TaskCertificate> {
  const r = await docker(['service', 'ps', service, '-q', '--no-trunc', '--filter', 'desired-state=running']);
  if (r.code !== 0) throw new DeployError(`\`docker service ps ${service}\` on the swarm manager failed: ${r.stderr.trim() || `exit ${r.code}`}`, 'engine');
  const task = r.stdout.split(/\s+/).find(Boolean);
  return task ? readTaskCertificate(docker, task) : { scheme: 'none' };
}
