/**
 * How a bundle is placed on a slave and how install.sh / uninstall.sh are invoked. The Pulumi
 * program, the direct deployer and the bootstrap script all build their command lines here, so the
 * system tests exercise exactly what `pulumi up` runs. The token never appears: install.sh reads it
 * from stdin (first line).
 */
import type { Strategy } from '../../core/protocol';
import { shQuote as q } from '../../core/shell-quote';

/** install.sh's --base-image when the stack sets no d8:baseImage (the official multi-arch Node image). */
export const DEFAULT_BASE_IMAGE = 'node:22-bookworm-slim';

/** Bundles live under the slave user's home, one directory per bundle hash. */
export const REMOTE_BUNDLE_ROOT = '.d8-agent/bundles';

/** `cd`-independent: works from any working directory of an SSH session (which starts in $HOME). */
function inHome(dir: string): string {
  return dir.startsWith('/') ? q(dir) : `"$HOME"/${q(dir)}`;
}

export function remoteBundleDir(bundleHash: string): string {
  return `${REMOTE_BUNDLE_ROOT}/${bundleHash.slice(0, 16)}`;
}

/**
 * Where one deploy's upload lands before it is renamed into remoteBundleDir: unique per deploy
 * (`nonce`), and hidden (dot name) from install.sh's pruning of older bundles.
 */
export function incomingBundleDir(bundleHash: string, nonce: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(nonce)) throw new RangeError(`incoming bundle nonce must be [A-Za-z0-9_-]+ (got ${JSON.stringify(nonce)})`);
  return `${REMOTE_BUNDLE_ROOT}/.incoming-${bundleHash.slice(0, 16)}-${nonce}`;
}

/**
 * Renames a complete upload (`incoming`, same parent) into `dest` — or drops it when `dest` already
 * holds this bundle — so an installer never runs from a directory another deploy is writing into.
 * A concurrent placement that won the race keeps its copy (ours, which mv put inside it, is removed).
 */
export function placeBundleCommand(incoming: string, dest: string, bundleHash: string): string {
  return placeBundleScript(inHome(incoming), dest, bundleHash);
}

/** placeBundleCommand with the upload's directory as a shell word (e.g. `"$inc"` from mktemp). */
export function placeBundleScript(incomingWord: string, dest: string, bundleHash: string): string {
  const inc = incomingWord;
  const d = inHome(dest);
  const complete = `[ "$(cat ${d}/BUNDLE_HASH 2>/dev/null)" = ${q(bundleHash)} ]`;
  // A complete dest is never moved or deleted (an installer may be running from it); only an
  // incomplete one (an interrupted copy by an older master) is set aside.
  return [
    `if ${complete}; then rm -rf ${inc}; exit 0; fi`,
    `n=$(basename ${inc}); mv ${inc} ${d} || exit 1`,
    `if [ -e ${d}/"$n" ]; then`,
    `  if ${complete}; then rm -rf ${d}/"$n"; exit 0; fi`,
    `  mv ${d}/"$n" ${d}.incoming-$$ && mv ${d} ${d}.stale-$$ && mv ${d}.incoming-$$ ${d}; rm -rf ${d}.stale-$$`,
    'fi',
    `${complete} || { echo "the bundle in ${dest} is incomplete after placing it" >&2; exit 1; }`,
  ].join('\n');
}

export interface InstallInvocation {
  /** Bundle directory on the slave (relative paths are relative to the user's home). */
  bundleDir: string;
  strategies: Strategy[];
  attempts: number;
  delaySeconds: number;
  agentPort: number;
  /** Base image for the docker strategy. */
  baseImage?: string;
  /** Seconds to wait for /api/health to report the bundle's commit after each install. */
  healthTimeoutSeconds?: number;
  /** The node the venv and native strategies use (a runtime the deployer shipped; relative = under $HOME). */
  nodePath?: string;
  /**
   * false: `--no-tls`, a plain-HTTP agent. For installs whose result never comes back to the master
   * (`d8 bootstrap-script`): without the certificate's fingerprint the master could not pin it.
   */
  tls?: boolean;
}


export function installCommand(inv: InstallInvocation): string {
  const args = [
    `--strategies ${q(inv.strategies.join(','))}`,
    `--attempts ${inv.attempts}`,
    `--delay ${inv.delaySeconds}`,
    `--port ${inv.agentPort}`,
    '--token-stdin',
  ];
  if (inv.baseImage) args.push(`--base-image ${q(inv.baseImage)}`);
  if (inv.healthTimeoutSeconds !== undefined) args.push(`--health-timeout ${inv.healthTimeoutSeconds}`);
  if (inv.nodePath) args.push(`--node ${inHome(inv.nodePath)}`);
  if (inv.tls === false) args.push('--no-tls');
  return `sh ${inHome(inv.bundleDir)}/install.sh ${args.join(' ')}`;
}

/** `stopOnly`: a release being replaced (keep the venv, bundles and images for the next install). */
export function uninstallCommand(bundleDir: string, agentPort: number, opts: { stopOnly?: boolean } = {}): string {
  return `sh ${inHome(bundleDir)}/uninstall.sh --port ${agentPort}${opts.stopOnly ? ' --stop-only' : ''}`;
}
