/**
 * Probing a host: run the probe script over the deploy's shell, parse the facts, judge them.
 * Used by the direct deployer before every install and by `d8 probe`.
 */
import type { HostFacts, HostVerdict } from '../../../core/host-probe';
import type { RuntimeSource } from '../../../core/node-runtime';
import type { Strategy } from '../../../core/protocol';
import type { ExecResult, SlaveShell } from '../direct/shell';
import { HostUnsupportedError } from '../direct/errors';
import { judgeHost } from './judge';
import { parseProbeOutput, ProbeOutputError } from './parse';
import { PROBE_SCRIPT } from './script';

export { judgeHost, judgeRuntime, runtimeArchFor } from './judge';
export { parseProbeOutput, ProbeOutputError } from './parse';
export { PROBE_SCRIPT } from './script';

export interface ProbeRun {
  facts: HostFacts;
  verdict: HostVerdict;
  /** The probe's own output, for the build log. */
  raw: ExecResult;
}

/** What the build log records for the probe command (the script itself is long and always the same). */
export const PROBE_COMMAND_LABEL = 'probe: arch, libc, free space, init, docker, python3, node, tools (master/deploy/probe/script.ts)';

export async function probeHost(shell: SlaveShell, strategies: readonly Strategy[], runtime: RuntimeSource): Promise<ProbeRun> {
  const raw = await shell.exec(PROBE_SCRIPT, { timeoutMs: 60000 });
  let facts: HostFacts;
  try {
    facts = parseProbeOutput(raw.stdout);
  } catch (err) {
    if (!(err instanceof ProbeOutputError)) throw err;
    const tail = raw.stderr.trim().split('\n').pop();
    throw new ProbeOutputError(`${err.message} (on ${shell.where}, exit ${raw.code}${tail ? `: ${tail}` : ''})`);
  }
  return { facts, verdict: judgeHost({ facts, strategies, runtime }), raw };
}

/** The refusal when no configured strategy can work on the host (both deployers, before writing anything). */
export function unsupportedHost(slave: string, where: string, verdict: HostVerdict): HostUnsupportedError | null {
  if (verdict.strategies.some((v) => v.ok)) return null;
  return new HostUnsupportedError(`${slave} (${where}): no strategy can work on this host, nothing was installed: ` +
    verdict.strategies.map((v) => `${v.strategy}: ${v.reason}`).join('; '));
}
