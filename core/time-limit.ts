/**
 * The one builder of a time-limited shell command, for the Pulumi program (infra/) and the direct
 * engine alike: coreutils/busybox `timeout`, so a hung installer (a health check that never passes, a
 * stuck `docker build`) cannot hold a deploy, or the host's installer lock, forever. GNU `timeout`
 * signals the command's whole process group.
 */

/** Seconds between SIGTERM and SIGKILL when a time limit is hit. */
export const KILL_AFTER_SECONDS = 30;

export function withTimeout(command: string, seconds: number): string {
  if (!Number.isInteger(seconds) || seconds < 1) throw new RangeError(`timeout must be a positive integer of seconds (got ${seconds})`);
  return `timeout -k ${KILL_AFTER_SECONDS} ${seconds} ${command}`;
}
