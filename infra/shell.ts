/**
 * Shell snippets the Pulumi program runs around the installer. The installer invocation itself comes
 * from agent/install/command.ts (shared with the direct deployer and the system tests); this file
 * only adds what surrounds it: a time limit (core/time-limit.ts), and the local bundle copy for `host: local`.
 */

import { shQuote } from '../core/shell-quote';
import { placeBundleScript } from '../agent/install/command';
import { withTimeout } from '../core/time-limit';

export { shQuote };
export { KILL_AFTER_SECONDS, withTimeout } from '../core/time-limit';

/** A path relative to the user's home (as remoteBundleDir returns) as a shell word that works from any cwd. */
export function homePath(dir: string): string {
  return dir.startsWith('/') ? shQuote(dir) : `"$HOME"/${shQuote(dir)}`;
}

/**
 * Copies a local bundle directory into `destDir` (relative to $HOME): into a fresh directory beside
 * it, renamed into place (agent/install/command.ts's placeBundleScript), so an installer never runs
 * from half a bundle, and two deploys of the same bundle never write into one directory.
 */
export function localCopyCommand(srcDir: string, destDir: string, bundleHash: string): string {
  const dest = homePath(destDir);
  return [
    `mkdir -p "$(dirname ${dest})" && inc=$(mktemp -d "$(dirname ${dest})/.incoming-XXXXXXXX") && cp -R ${shQuote(srcDir)}/. "$inc"/ || exit 1`,
    placeBundleScript('"$inc"', destDir, bundleHash),
  ].join('\n');
}

/** Removes a bundle directory copied by localCopyCommand. */
export function localRemoveCommand(destDir: string): string {
  return `rm -rf ${homePath(destDir)}`;
}

/**
 * The install's delete, which runs for a replace (a new release) as much as for a real delete: it
 * stops the agent with `uninstall.sh --stop-only` of the bundle the agent was installed from
 * (exactly agent/install/command.ts's command line), keeping the venv, bundles and images the next
 * install reuses; the full clean is the `<slave>-state` resource's delete (purgeCommand). When that
 * bundle is gone from the host — a direct deploy or a person replaced it — the agent on the port
 * must still stop, so any other bundle's uninstall.sh there is used (it is the same script, per
 * port); with none left, nothing of D8 is there to stop. Without this fallback the delete fails
 * and blocks every later replace and `pulumi destroy`.
 */
export function uninstallOnDelete(bundleDir: string, agentPort: number, uninstall: string, seconds: number): string {
  const own = `${homePath(bundleDir)}/uninstall.sh`;
  const other = `u=; for f in "$HOME"/.d8-agent/bundles/*/uninstall.sh; do [ -f "$f" ] && u=$f && break; done`;
  return [
    `if [ -f ${own} ]; then ${withTimeout(uninstall, seconds)}`,
    `else ${other}; if [ -n "$u" ]; then echo "[d8] bundle ${bundleDir} is gone from this host: using $u" >&2; ${withTimeout(`sh "$u" --port ${agentPort} --stop-only`, seconds)}`,
    `else echo "[d8] no D8 bundle left on this host: nothing to stop for port ${agentPort}" >&2; fi; fi`,
  ].join('; ');
}

/** Creates the slave's state directory (what the `<slave>-state` resource stands for). */
export const STATE_CREATE_COMMAND = 'mkdir -p "$HOME/.d8-agent" && chmod 700 "$HOME/.d8-agent"';

/**
 * The `<slave>-state` resource's delete: a real delete (the slave left the stack, `pulumi destroy`)
 * cleans everything of the agent on the port, the venv and images included. uninstall.sh travels
 * inside the command (written to a temporary file first), so it works whatever is left on the host.
 */
export function purgeCommand(uninstallScript: string, agentPort: number, seconds: number): string {
  const marker = 'D8_UNINSTALL_SH';
  if (uninstallScript.split('\n').some((l) => l === marker)) throw new RangeError(`uninstall.sh contains a line "${marker}"`);
  return [
    `f=$(mktemp) || exit 1; cat > "$f" <<'${marker}'\n${uninstallScript.replace(/\n?$/, '\n')}${marker}`,
    `${withTimeout('sh "$f"', seconds)} --port ${agentPort}; rc=$?; rm -f "$f"; exit $rc`,
  ].join('\n');
}
