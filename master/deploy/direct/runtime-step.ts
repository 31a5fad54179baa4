/**
 * The direct deployer's runtime step: after the probe, a host that the verdict says needs our
 * Node.js runtime gets it (fetched into the master's cache when missing, then pushed). Returns the
 * node path install.sh is given with --node, or undefined when the host's own node is used.
 */
import type { HostVerdict } from '../../../core/host-probe';
import { runtimeSource } from '../../../core/node-runtime';
import type { FleetConfig, SlaveConfig } from '../../../core/stack-config';
import type { BuildLog } from '../build-log';
import type { RuntimeCache } from '../../../core/runtime-cache';
import { ensureRemoteRuntime } from '../../runtime/push';
import type { SlaveShell } from './shell';

export interface RuntimeStepInput {
  slave: SlaveConfig;
  config: FleetConfig;
  shell: SlaveShell;
  home: string;
  verdict: HostVerdict;
  cache: RuntimeCache;
  log: BuildLog;
  progress: (message: string) => void;
}

export async function provideRuntime(i: RuntimeStepInput): Promise<string | undefined> {
  const r = i.verdict.runtime;
  if (r.need !== 'push' || !i.slave.strategies.some((s) => s === 'venv' || s === 'native')) return undefined;
  const src = runtimeSource(i.config);
  const t0 = Date.now();
  const cached = await i.cache.ensure(src, r.arch);
  i.log.record({
    command: `runtime: ${cached.fetched ? `fetch ${src.distUrl}/${src.version}/` : 'cached'} ${cached.file}`,
    success: true, stdout: `sha256 ${cached.sha256} matches SHASUMS256.txt (${cached.bytes} bytes, ${Date.now() - t0} ms)`, stderr: '', exit_code: 0,
  });
  const remote = await ensureRemoteRuntime({
    shell: i.shell, home: i.home, runtime: cached, onProgress: i.progress,
    record: (s) => i.log.record({ command: s.command, success: s.code === 0, stdout: s.stdout, stderr: s.stderr, exit_code: s.code }),
  });
  if (remote.pushed) {
    i.progress(`node ${src.version} (${r.arch}) pushed and checked in ${(remote.ms / 1000).toFixed(1)} s ` +
      `(${(remote.bytes / 1048576 / Math.max(remote.ms / 1000, 0.001)).toFixed(1)} MB/s)`);
  }
  return remote.nodePath;
}
