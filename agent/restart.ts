/**
 * POST /api/restart: the agent never kills itself inline. In `spawn` mode it starts a detached copy
 * of itself (same node flags, argv and environment, its own session) and exits once the copy is
 * running; the copy retries binding the port while we let go of it. In `exit` mode (PID 1 of a
 * container, or a systemd unit) it exits with EXIT_FOR_RESTART and the supervisor's restart policy
 * brings it back: a detached child would be killed together with the container or the unit's cgroup.
 */
import { spawn } from 'child_process';
import type { Logger } from '../core/logger';
import type { RestartMode } from './config';

/** EX_TEMPFAIL: lets a `Restart=on-failure` unit restart us too. */
export const EXIT_FOR_RESTART = 75;

export interface RestartOptions {
  mode: RestartMode;
  env: NodeJS.ProcessEnv;
  /** The port actually bound (an ephemeral port must stay the same across the restart). */
  port: number;
  logger: Logger;
  /** Stops listening, cancels tasks. */
  shutdown: () => Promise<void>;
  exit?: (code: number) => void;
}

export async function restartDetached(opts: RestartOptions): Promise<void> {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  if (opts.mode === 'exit') {
    opts.logger.info({ exit_code: EXIT_FOR_RESTART }, 'restarting: exiting for the supervisor to restart us');
    await opts.shutdown();
    exit(EXIT_FOR_RESTART);
    return;
  }
  const env = { ...opts.env, D8_AGENT_PORT: String(opts.port), D8_RESTARTED_FROM: String(process.pid) };
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit'],
    env,
  });
  const started = await new Promise<boolean>((resolve) => {
    child.once('spawn', () => resolve(true));
    child.once('error', (err) => {
      opts.logger.error({ err: err.message }, 'restart failed: could not start a new agent; this one keeps running');
      resolve(false);
    });
  });
  if (!started) return;
  child.unref();
  opts.logger.info({ new_pid: child.pid }, 'restarting: a new agent was started; this one exits');
  await opts.shutdown();
  exit(0);
}
