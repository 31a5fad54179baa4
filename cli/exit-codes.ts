/**
 * The one place a deploy's outcome becomes the `d8` exit status, so scripts can act by kind (retry
 * a timeout, page someone for a host key) without parsing messages.
 */
import type { DeployErrorKind, DeployResult } from '../core/deploy-result';
import type { ControlResult } from '../master/store/commands';

/** 1 stays what it always was: the command itself could not run (bad option, unreadable stack). */
export const EXIT_USAGE = 1;

export const DEPLOY_EXIT_CODES: Readonly<Record<DeployErrorKind, number>> = {
  install_failed: 10,
  connect: 11,
  auth: 12,
  host_key: 13,
  timeout: 14,
  config: 15,
  engine: 16,
  unsupported: 17,
  locked: 18,
};

const WHAT: Readonly<Record<DeployErrorKind, string>> = {
  install_failed: 'install.sh ran and every strategy failed, or the agent did not come up',
  connect: 'the host or its sshd cannot be reached',
  auth: 'the SSH login or key was refused',
  host_key: 'the host key is not the configured hostKey, or not the one recorded on first use (see d8 trust)',
  timeout: 'a step overran its time limit',
  config: 'the stack config or a secret is missing or wrong',
  engine: 'the deploy engine itself failed',
  unsupported: 'the host cannot run any configured strategy (arch, libc, no docker): nothing was installed',
  locked: 'another process is deploying this slave (--no-wait, or the wait timed out): nothing was done',
};

/** 0 when every slave is deployed or up to date; else the code of the first failed slave (stack order). */
export function deployExitCode(results: readonly DeployResult[]): number {
  const failed = results.find((r) => r.status === 'failed');
  return failed ? DEPLOY_EXIT_CODES[failed.errorKind ?? 'engine'] : 0;
}

/** `d8 retry` / `d8 update`: 0 when the slave ends up fine, the deploy's code when a deploy failed, else 1. */
export function controlExitCode(r: ControlResult): number {
  if (r.ok) return 0;
  if (!r.error_kind) return EXIT_USAGE;
  return DEPLOY_EXIT_CODES[r.error_kind === 'no_ssh_key' ? 'config' : r.error_kind];
}

/** The exit-status table for `--help`. */
export function exitCodesHelp(success = 'every slave deployed or already up to date'): string {
  const rows = (Object.keys(DEPLOY_EXIT_CODES) as DeployErrorKind[]).map((k) => `  ${String(DEPLOY_EXIT_CODES[k]).padEnd(3)} ${k.padEnd(15)} ${WHAT[k]}`);
  return ['Exit status:', `  0   ${success}`, `  ${EXIT_USAGE}   the command could not run (bad option, unreadable stack file)`,
    ...rows, 'With several failures, the status of the first failed slave in the stack\'s order (--json lists each errorKind).'].join('\n');
}
