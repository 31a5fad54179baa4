/**
 * Shell snippets the Pulumi program runs around the installer. The installer invocation itself comes
 * from agent/install/command.ts (shared with the direct deployer and the system tests); this file
 * only adds what surrounds it: a time limit, and the local bundle copy for `host: local`.
 */

import { shQuote } from '../core/sh-quote';

export { shQuote };

/** A path relative to the user's home (as remoteBundleDir returns) as a shell word that works from any cwd. */
export function homePath(dir: string): string {
  return dir.startsWith('/') ? shQuote(dir) : `"$HOME"/${shQuote(dir)}`;
}

/** Seconds between SIGTERM and SIGKILL when a time limit is hit. */
export const KILL_AFTER_SECONDS = 30;

/**
 * Runs `command` under coreutils/busybox `timeout`, so a hung installer (a health check that never
 * passes, a stuck `docker build`) cannot hold `pulumi up` forever.
 */
export function withTimeout(command: string, seconds: number): string {
  if (!Number.isInteger(seconds) || seconds < 1) throw new RangeError(`timeout must be a positive integer of seconds (got ${seconds})`);
  return `timeout -k ${KILL_AFTER_SECONDS} ${seconds} ${command}`;
}

/**
 * Copies a local bundle directory into `destDir` (relative to $HOME), replacing what was there.
 * Staged next to the destination and renamed, so an interrupted copy never leaves half a bundle
 * where install.sh would run it.
 */
export function localCopyCommand(srcDir: string, destDir: string): string {
  const dest = homePath(destDir);
  const staging = homePath(`${destDir}.partial`);
  return [
    'set -e',
    `mkdir -p "$(dirname ${dest})"`,
    `rm -rf ${staging}`,
    `cp -R ${shQuote(srcDir)} ${staging}`,
    `rm -rf ${dest}`,
    `mv ${staging} ${dest}`,
  ].join('; ');
}

/** Removes a bundle directory copied by localCopyCommand. */
export function localRemoveCommand(destDir: string): string {
  return `rm -rf ${homePath(destDir)}`;
}

/**
 * The install's delete: uninstall.sh of the bundle the agent was installed from (exactly
 * agent/install/command.ts's command line). When that bundle is gone from the host — a direct deploy
 * or a person replaced it — the agent on the port must still go, so any other bundle's uninstall.sh
 * there is used (it is the same script, per port); with none left, nothing of D8 is there to remove.
 * Without this fallback the delete fails and blocks every later replace and `pulumi destroy`.
 */
export function uninstallOnDelete(bundleDir: string, agentPort: number, uninstall: string, seconds: number): string {
  const own = `${homePath(bundleDir)}/uninstall.sh`;
  const other = `u=; for f in "$HOME"/.d8-agent/bundles/*/uninstall.sh; do [ -f "$f" ] && u=$f && break; done`;
  return [
    `if [ -f ${own} ]; then ${withTimeout(uninstall, seconds)}`,
    `else ${other}; if [ -n "$u" ]; then echo "[d8] bundle ${bundleDir} is gone from this host: using $u" >&2; ${withTimeout(`sh "$u" --port ${agentPort}`, seconds)}`,
    `else echo "[d8] no D8 bundle left on this host: nothing to uninstall for port ${agentPort}" >&2; fi; fi`,
  ].join('; ');
}
