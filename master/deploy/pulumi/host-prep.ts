/**
 * What the pulumi deployer does on the host before `pulumi up`, over one SSH session (a local shell
 * for `host: local`), the same steps as the direct deployer: probe it (a host where no strategy can
 * work is refused, nothing written), put the docker strategy's base image there (base-image.ts), and
 * tell the program which runtime the host needs (PROBED_RUNTIMES_ENV): so `pulumi up` through d8
 * needs no `arch` in the stack config.
 */
import type { HostKey } from '../../../core/host-key';
import type { ProbedRuntimes } from '../../../core/host-probe';
import { runtimeSource } from '../../../core/node-runtime';
import type { FleetConfig, SlaveConfig } from '../../../core/stack-config';
import { baseImageStep } from '../base-image';
import type { BuildLog } from '../build-log';
import { RemoteCommandError } from '../direct/errors';
import { LocalShell, SshShell, sshTarget, type SlaveShell } from '../direct/shell';
import { probeHost, PROBE_COMMAND_LABEL, unsupportedHost } from '../probe';

export interface HostPrepInput {
  slave: SlaveConfig;
  config: FleetConfig;
  /** For D8_HOME (image cache) and the master's docker CLI. */
  env?: NodeJS.ProcessEnv;
  log: BuildLog;
  progress: (phase: 'probe' | 'image', message: string) => void;
  connectTimeoutMs?: number;
  /** A new host's key was recorded (trust on first use). */
  onFirstUse?: (key: HostKey) => void;
}

/** Returns the runtimes the program must ship for this slave (empty when its own node will do). */
export async function prepareHost(i: HostPrepInput): Promise<ProbedRuntimes> {
  const { slave, config, log } = i;
  const shell: SlaveShell = slave.local ? new LocalShell() : await SshShell.connect(sshTarget(slave, config, { readyTimeoutMs: i.connectTimeoutMs ?? 20_000, env: i.env, onFirstUse: i.onFirstUse }));
  try {
    i.progress('probe', `probing ${shell.where}`);
    const run = await probeHost(shell, slave.strategies, runtimeSource(config)).catch((err: Error) => {
      log.record({ command: PROBE_COMMAND_LABEL, success: false, stdout: '', stderr: err.message, exit_code: null });
      throw new RemoteCommandError(`${slave.name}: ${err.message}`, null);
    });
    log.record({ command: PROBE_COMMAND_LABEL, success: run.raw.code === 0, stdout: run.raw.stdout, stderr: run.raw.stderr, exit_code: run.raw.code });
    log.record({ command: 'probe verdict', success: true, stdout: JSON.stringify({ facts: run.facts, verdict: run.verdict }), stderr: '', exit_code: 0 });
    i.progress('probe', run.verdict.summary);
    const refused = unsupportedHost(slave.name, shell.where, run.verdict);
    if (refused) throw refused;

    await baseImageStep({
      slave, config, shell, verdict: run.verdict, env: i.env,
      record: (s) => log.record({ command: s.command, success: s.code === 0, stdout: s.stdout, stderr: s.stderr, exit_code: s.code }),
      progress: (m) => i.progress('image', m),
    });

    const rt = run.verdict.runtime;
    if (rt.need !== 'push' || slave.local || !slave.strategies.some((s) => s === 'venv' || s === 'native')) return {};
    if (slave.arch && slave.arch !== rt.arch) {
      i.progress('probe', `warning: d8:slaves arch says ${slave.arch}, the probe found ${rt.arch}: the program ships ${slave.arch} as configured`);
    }
    return slave.arch ? {} : { [slave.name]: rt.arch };
  } finally {
    await shell.close().catch(() => undefined);
  }
}
