/**
 * How `pulumi up` learns that a host needs the Node.js runtime, per slave: its `arch` in the stack
 * config, else what the master's probe found (D8_PROBED_RUNTIMES, set by the pulumi deployer, i.e.
 * `d8 up --engine pulumi` and the daemon). A raw `pulumi up` has no probe: a host without node needs
 * `arch` in its config there. For those slaves the program takes the tarball from the master's cache
 * (fetching it once, checked against SHASUMS256.txt) and ships it with the bundle.
 */
import { PROBED_RUNTIMES_ENV, ProbedRuntimesSchema, type ProbedRuntimes } from '../core/host-probe';
import { runtimeSource } from '../core/node-runtime';
import { RuntimeCache } from '../core/runtime-cache';
import type { FleetConfig } from '../core/stack-config';
import type { SlaveHostArgs } from './slave-host';
import { envJson } from './env-json';

export function probedRuntimes(env: NodeJS.ProcessEnv): ProbedRuntimes {
  return envJson(env, PROBED_RUNTIMES_ENV, ProbedRuntimesSchema, 'a JSON object of slave name to x64, arm64 or armv7l') ?? {};
}

export async function fleetRuntimes(config: FleetConfig, env: NodeJS.ProcessEnv, say: (m: string) => void): Promise<Record<string, SlaveHostArgs['runtime']>> {
  const probed = probedRuntimes(env);
  const cache = new RuntimeCache({ env, onProgress: say });
  const src = runtimeSource(config);
  const out: Record<string, SlaveHostArgs['runtime']> = {};
  for (const s of config.slaves) {
    const arch = s.arch ?? probed[s.name];
    if (!arch || s.local || !s.strategies.some((x) => x === 'venv' || x === 'native')) continue;
    const rt = await cache.ensure(src, arch);
    const why = s.arch ? 'd8:slaves arch' : 'the master\'s probe found no usable node';
    say(`${s.name}: shipping node ${rt.version} for linux-${rt.arch} with the bundle (${why}; ${rt.fetched ? 'fetched' : 'cached'} ${rt.file})`);
    out[s.name] = { file: rt.file, sha256: rt.sha256, version: rt.version, arch: rt.arch };
  }
  return out;
}
