/**
 * The kept releases some slaves get instead of the fleet's bundle (D8_SLAVE_BUNDLES, set by the
 * master's pulumi deployer for a rollout step or a rollback): read and checked against their hash.
 */
import { readBundle } from '../agent/bundle/build';
import { SLAVE_BUNDLES_ENV, SlaveBundleDirsSchema } from '../core/release-env';
import { ConfigError, type FleetConfig } from '../core/stack-config';
import type { BundleRef } from './bundle-ref';
import { envJson } from './env-json';

export function slaveBundles(config: Pick<FleetConfig, 'slaves'>, env: NodeJS.ProcessEnv): Record<string, BundleRef> {
  const dirs = envJson(env, SLAVE_BUNDLES_ENV, SlaveBundleDirsSchema, 'a JSON object of slave name to bundle directory') ?? {};
  const unknown = Object.keys(dirs).filter((n) => !config.slaves.some((s) => s.name === n));
  if (unknown.length) throw new ConfigError(`${SLAVE_BUNDLES_ENV} names ${unknown.join(', ')}, not in d8:slaves: unset it`, SLAVE_BUNDLES_ENV);
  return Object.fromEntries(Object.entries(dirs).map(([name, dir]) => [name, readBundle(dir)]));
}
