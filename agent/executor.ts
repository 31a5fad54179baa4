/**
 * Turns an execute request into a process: `sh -c` or python, natively, in the task venv, or in a
 * throwaway container of the task image. The task never sees the agent's token.
 */
import crypto from 'crypto';
import os from 'os';
import path from 'path';
import { execFile } from 'child_process';
import { LIMITS, type ExecuteResponse, type ParsedExecuteRequest, type Strategy } from '../core/protocol';
import { runProcess, type ProcessOutcome, type ProcessSpec } from './process-runner';
import { venvPython } from './methods';

export interface ExecutorOptions {
  venvDir: string | null;
  taskImage: string;
  python: string;
  /** The agent's environment; tasks get a copy without the agent's secrets. */
  env: NodeJS.ProcessEnv;
  maxOutputBytes?: number;
}

// D8_TLS_DIR names where the agent's private key is: not a task's business either; nor is the
// agent's own log file (a `d8 agent` run as a task would write into it).
const SECRET_ENV = ['D8_AGENT_TOKEN', 'D8_AGENT_TOKEN_FILE', 'D8_TLS_DIR', 'D8_LOG_FILE'];

export function taskEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const k of SECRET_ENV) delete out[k];
  return out;
}

export interface TaskSpec {
  request: ParsedExecuteRequest;
  method: Strategy;
  /** Absolute, existing directory (checked by the caller). */
  workingDir: string | null;
  signal?: AbortSignal;
}

/** Names of containers we started, so they can be removed on timeout or shutdown. */
export function containerName(): string {
  return `d8-task-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
}

function removeContainer(name: string): void {
  const rm = (): void => {
    execFile('docker', ['rm', '-f', name], { timeout: 15_000 }, () => undefined);
  };
  rm();
  // The CLI may have been killed between asking for the container and its creation: try once more.
  setTimeout(rm, 2000).unref();
}

export function buildProcessSpec(task: TaskSpec, opts: ExecutorOptions): ProcessSpec {
  const { request, method, workingDir } = task;
  const base = {
    env: taskEnv(opts.env),
    timeoutMs: Math.round(request.timeout_s * 1000),
    maxOutputBytes: opts.maxOutputBytes ?? LIMITS.maxOutputBytes,
    signal: task.signal,
  };
  if (method === 'docker') {
    const name = containerName();
    const args = ['run', '--rm', '--pull', 'never', '--name', name, '--label', 'd8.task=1'];
    const uid = typeof process.getuid === 'function' ? process.getuid() : null;
    const gid = typeof process.getgid === 'function' ? process.getgid() : null;
    if (uid !== null && gid !== null) args.push('--user', `${uid}:${gid}`);
    if (workingDir) args.push('--volume', `${workingDir}:${workingDir}`, '--workdir', workingDir);
    args.push(opts.taskImage);
    if (request.kind === 'python') args.push('python3', '-c', request.command);
    else args.push('sh', '-c', request.command);
    return { ...base, file: 'docker', args, onKill: () => removeContainer(name) };
  }
  const cwd = workingDir ?? os.homedir();
  if (method === 'venv') {
    const venvDir = opts.venvDir as string;
    const env: NodeJS.ProcessEnv = { ...base.env, VIRTUAL_ENV: venvDir, PATH: `${path.join(venvDir, 'bin')}${path.delimiter}${base.env.PATH ?? ''}` };
    delete env.PYTHONHOME;
    if (request.kind === 'python') return { ...base, env, cwd, file: venvPython(venvDir), args: ['-c', request.command] };
    return { ...base, env, cwd, file: 'sh', args: ['-c', request.command] };
  }
  if (request.kind === 'python') return { ...base, cwd, file: opts.python, args: ['-c', request.command] };
  return { ...base, cwd, file: 'sh', args: ['-c', request.command] };
}

export function toResponse(outcome: ProcessOutcome, method: Strategy, timeoutS: number): ExecuteResponse {
  let error: string | null = null;
  if (outcome.spawnError) error = outcome.spawnError;
  else if (outcome.timedOut) error = `timed out after ${timeoutS} s; the process group was killed`;
  else if (outcome.aborted) error = 'cancelled: the client disconnected or the agent is shutting down';
  else if (outcome.signal) error = `killed by ${outcome.signal}`;
  else if (outcome.exitCode !== 0) error = `exit code ${String(outcome.exitCode)}`;
  return {
    success: error === null,
    output: outcome.output,
    error,
    exit_code: outcome.exitCode,
    method,
    duration_ms: Math.round(outcome.durationMs * 1000) / 1000,
    truncated: outcome.truncated,
  };
}

export async function executeTask(task: TaskSpec, opts: ExecutorOptions): Promise<ExecuteResponse> {
  const outcome = await runProcess(buildProcessSpec(task, opts));
  return toResponse(outcome, task.method, task.request.timeout_s);
}
