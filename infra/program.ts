/**
 * The Pulumi program (`pulumi up` runs it through infra/index.js): reads the `d8:` stack config,
 * validates it with the shared schema (core/stack-config.ts), builds the agent bundle and declares
 * the fleet. Returns the stack outputs.
 */
import * as pulumi from '@pulumi/pulumi';
import { BundleBuildError, buildBundle, readBundle } from '../agent/bundle/build';
import { NotAGitCheckoutError, VersionFileError } from '../core/version-info';
import { RuntimeChecksumError, RuntimeFetchError } from '../core/runtime-cache';
import {
  CONFIG_NAMESPACE, ConfigError, isStringKey, resolveFleetConfig, withDevToken, type FleetConfig,
} from '../core/stack-config';
import type { BundleRef } from './bundle-ref';
import { createFleet, validateFleet, type CreateFleetOptions } from './fleet';
import { fleetRuntimes } from './runtimes';
import { slaveBundles } from './slave-bundles';
import { BUNDLE_DIR_ENV } from '../core/release-env';
import { managerNodes, swarmPlatform, SwarmManagerError, SwarmPlatformError } from './swarm-docker';
import { parseSwarmManager } from './swarm-spec';
import { KnownHosts } from '../core/known-hosts';
import { SlaveTokenFileError, SlaveTokens } from '../core/slave-tokens';

/**
 * Every `d8:` key of the stack, namespace stripped. The CLI hands objects, lists and numbers over as
 * JSON text: those are parsed (text that is not JSON stays text, so zod names the key and the type).
 * Secret values are plain here; the program wraps everything derived from them in pulumi.secret.
 */
export function rawStackConfig(all: Record<string, string> = pulumi.runtime.allConfig()): Record<string, unknown> {
  const cfg = new pulumi.Config(CONFIG_NAMESPACE);
  const raw: Record<string, unknown> = {};
  for (const fullKey of Object.keys(all).sort()) {
    if (!fullKey.startsWith(`${CONFIG_NAMESPACE}:`)) continue;
    const key = fullKey.slice(CONFIG_NAMESPACE.length + 1);
    if (isStringKey(key)) {
      raw[key] = cfg.get(key);
      continue;
    }
    try {
      raw[key] = cfg.getObject<unknown>(key);
    } catch {
      raw[key] = cfg.get(key);
    }
  }
  return raw;
}

/** The stack's fleet config; environment overrides apply, and the dev stack gets its generated token. */
export function readFleetConfig(env: NodeJS.ProcessEnv = process.env): FleetConfig {
  return withDevToken(resolveFleetConfig(rawStackConfig(), { stack: pulumi.getStack(), env }), env);
}

/** D8_BUNDLE_DIR names a prebuilt bundle (e.g. the master's); otherwise one is built from this checkout. */
async function fleetBundle(config: FleetConfig, env: NodeJS.ProcessEnv): Promise<BundleRef> {
  const prebuilt = env[BUNDLE_DIR_ENV]?.trim();
  if (prebuilt) {
    const bundle = readBundle(prebuilt);
    void pulumi.log.info(`using the prebuilt agent bundle ${bundle.dir} (commit ${bundle.versionInfo.commit.slice(0, 7)})`);
    return bundle;
  }
  void pulumi.log.info('building the agent bundle from this checkout');
  const bundle = await buildBundle({ requirements: config.requirements });
  void pulumi.log.info(`agent bundle ${bundle.hash.slice(0, 16)} for commit ${bundle.versionInfo.commit.slice(0, 7)}${bundle.versionInfo.dirty ? ' (dirty tree)' : ''}`);
  return bundle;
}

/** Runs the program; a bad config becomes a one-line error (RunError: no stack trace). */
export async function program(env: NodeJS.ProcessEnv = process.env, fleetOptions: CreateFleetOptions = {}): Promise<Record<string, unknown>> {
  try {
    const config = readFleetConfig(env);
    const knownHosts = fleetOptions.knownHosts ?? KnownHosts.forEnv(env);
    const slaveTokens = fleetOptions.slaveTokens ?? SlaveTokens.forEnv(config.stack, env);
    validateFleet(config, { ...fleetOptions, knownHosts, slaveTokens });
    for (const s of config.slaves) {
      if (s.local || s.hostKey || config.swarm || knownHosts.lookup(s.host, s.sshPort)) continue;
      void pulumi.log.warn(`${s.name}: no host key pinned (hostKey) or recorded in ${knownHosts.file}: this up accepts whatever key ${s.host}:${s.sshPort} offers; ` +
        `\`d8 up --engine pulumi\` records it on first use, or \`d8 trust ${s.name}\` does now`);
    }
    const bundle = await fleetBundle(config, env);
    const perSlave = fleetOptions.slaveBundles ?? slaveBundles(config, env);
    for (const [name, b] of Object.entries(perSlave)) void pulumi.log.info(`${name}: the kept release ${b.versionInfo.commit.slice(0, 7)} (${b.dir})`);
    const runtimes = fleetOptions.runtimes ?? await fleetRuntimes(config, env, (m) => { void pulumi.log.info(m); });
    const swarmNodes = config.swarm ? fleetOptions.swarmNodes ?? await managerNodes(parseSwarmManager(config.swarm), { sshKeyPath: config.sshKeyPath }) : undefined;
    if (swarmNodes) void pulumi.log.info(`swarm nodes run ${swarmPlatform(swarmNodes)}: building the agent image for it`);
    const fleet = createFleet(config, bundle, { ...fleetOptions, runtimes, swarmNodes, knownHosts, slaveTokens, slaveBundles: perSlave });
    return Object.fromEntries(Object.entries(fleet.outputs).filter(([, v]) => v !== undefined));
  } catch (err) {
    // Errors the user fixes from the message alone: no stack trace.
    if (err instanceof ConfigError || err instanceof BundleBuildError || err instanceof NotAGitCheckoutError || err instanceof VersionFileError ||
      err instanceof RuntimeFetchError || err instanceof RuntimeChecksumError || err instanceof SwarmPlatformError || err instanceof SwarmManagerError ||
      err instanceof SlaveTokenFileError) {
      throw new pulumi.RunError((err as Error).message);
    }
    throw err;
  }
}
