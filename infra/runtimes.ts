/**
 * How `pulumi up` learns that a host needs the Node.js runtime: the slave's `arch` in the stack config
 * (`d8 probe <slave>` prints it). For those slaves the program takes the tarball from the master's
 * cache (fetching it once, checked against SHASUMS256.txt) and ships it with the bundle.
 */
import { runtimeSource } from '../core/node-runtime';
import { RuntimeCache } from '../core/runtime-cache';
import type { FleetConfig } from '../core/stack-config';
import type { SlaveHostArgs } from './slave-host';

export async function fleetRuntimes(config: FleetConfig, env: NodeJS.ProcessEnv, say: (m: string) => void): Promise<Record<string, SlaveHostArgs['runtime']>> {
  const cache = new RuntimeCache({ env, onProgress: say });
  const src = runtimeSource(config);
  const out: Record<string, SlaveHostArgs['runtime']> = {};
  for (const s of config.slaves) {
    if (!s.arch || s.local || !s.strategies.some((x) => x === 'venv' || x === 'native')) continue;
    const rt = await cache.ensure(src, s.arch);
    say(`${s.name}: shipping node ${rt.version} for linux-${rt.arch} with the bundle (d8:slaves arch; ${rt.fetched ? 'fetched' : 'cached'} ${rt.file})`);
    out[s.name] = { file: rt.file, sha256: rt.sha256, version: rt.version, arch: rt.arch };
  }
  return out;
}
