/**
 * The fleet program as a function: `createFleet(config, bundle)` declares one SlaveHost per slave
 * (or, with `d8:swarm`, one SwarmAgent), so tests and the Automation API build it with any config.
 * Everything that can be wrong with the config is checked before the first resource is declared.
 */
import fs from 'fs';
import * as pulumi from '@pulumi/pulumi';
import type { types } from '@pulumi/command';
import type { InstallResult } from '../core/install-result';
import type { Strategy } from '../core/protocol';
import { ConfigError, optionalAgentToken, requireAgentToken, type FleetConfig, type SlaveConfig } from '../core/stack-config';
import type { BundleRef } from './bundle-ref';
import { agentEndpoint, SlaveHost, type SlaveHostArgs } from './slave-host';
import { slaveConnection } from './ssh-connection';
import { loadSshPrivateKey } from '../core/ssh-key';
import type { KnownHosts } from '../core/known-hosts';
import type { SlaveTokens } from '../core/slave-tokens';
import { SwarmAgent } from './swarm-agent';
import { resolveSwarmNodes, swarmPlatform, type SwarmNode } from './swarm-docker';
import { swarmServiceName } from './swarm-spec';
import { swarmResourceNames } from './urns';

/** Seconds one install attempt of one strategy may take (a docker build on a Raspberry Pi included). */
export const ATTEMPT_BUDGET_SECONDS = 300;

export interface CreateFleetOptions {
  /** Overrides the install time limit derived from strategies × attempts. */
  installTimeoutSeconds?: number;
  /** Options given to every top-level component (e.g. `transformations`, `protect`). */
  resourceOptions?: pulumi.ComponentResourceOptions;
  /** Node.js runtimes to ship, by slave name (infra/runtimes.ts). */
  runtimes?: Record<string, SlaveHostArgs['runtime']>;
  /** Swarm mode: the swarm's nodes (their platform, and each slave's node); the program asks the manager. */
  swarmNodes?: SwarmNode[];
  /** Host keys recorded on first use (D8_HOME/known_hosts): required of slaves without a `hostKey`. */
  knownHosts?: KnownHosts;
  /** Per-slave agent tokens (D8_HOME/tokens); without it every slave gets the fleet token. */
  slaveTokens?: SlaveTokens;
  /** Kept releases (issue 14) these slaves get instead of the fleet's bundle: a rollout step or a rollback. */
  slaveBundles?: Record<string, BundleRef>;
}

export interface SlaveOutput {
  endpoint: string;
  strategy: Strategy | null;
  mode: 'ssh' | 'local' | 'swarm';
}

export interface Fleet {
  /** One SlaveHost per slave, by name (empty in swarm mode). */
  hosts: Record<string, SlaveHost>;
  swarm?: SwarmAgent;
  /** The stack outputs: every slave's endpoint and winning strategy, and the release deployed. */
  outputs: {
    slaves: pulumi.Output<Record<string, SlaveOutput>>;
    /** install.sh's JSON result per slave (not in swarm mode): what the master reads after a deploy. */
    installs?: pulumi.Output<Record<string, InstallResult | null>>;
    commit: string;
    bundleHash: string;
    /** Swarm mode: each slave's service name. */
    swarmServices?: pulumi.Output<Record<string, string>>;
  };
}

/** The install time limit for one slave: every strategy may use every attempt, plus the delays. */
export function installTimeoutSeconds(slave: SlaveConfig, config: Pick<FleetConfig, 'installAttempts' | 'installDelaySeconds'>): number {
  const runs = slave.strategies.length * config.installAttempts;
  return Math.ceil(runs * (ATTEMPT_BUDGET_SECONDS + config.installDelaySeconds));
}

interface SlavePlan {
  slave: SlaveConfig;
  /** The slave's own token (a secret), or the fleet token. */
  token: pulumi.Output<string>;
  connection?: types.input.remote.ConnectionArgs;
  installTimeoutSeconds: number;
}

interface FleetPlan {
  /**
   * Swarm mode: the manager, and once the swarm's nodes are known (the program checks the config
   * before it asks the manager), their platform and each slave's node by slave name; null otherwise.
   */
  swarm: { manager: string; placed: { platform: string; nodes: Record<string, string> } | null } | null;
  slaves: SlavePlan[];
}

/**
 * Checks what resolveFleetConfig cannot (the token, key files, host keys) and prepares every slave.
 * Throws ConfigError; declares nothing, so the program can call it before building the bundle.
 */
export function validateFleet(config: FleetConfig, opts: CreateFleetOptions = {}): FleetPlan {
  if (opts.installTimeoutSeconds !== undefined && (!Number.isInteger(opts.installTimeoutSeconds) || opts.installTimeoutSeconds < 1)) {
    throw new RangeError(`installTimeoutSeconds must be a positive integer (got ${opts.installTimeoutSeconds})`);
  }
  const own = opts.slaveTokens;
  let tokenFor: (slave: string) => string;
  if (own) {
    optionalAgentToken(config);
    tokenFor = (slave) => own.forDeploy(slave);
  } else {
    const fleetToken = requireAgentToken(config, 'a program without per-slave tokens (createFleet without slaveTokens)');
    tokenFor = () => fleetToken;
  }
  if (config.swarm) {
    if (config.sshKeyPath && !fs.existsSync(config.sshKeyPath)) {
      throw new ConfigError(`stack ${config.stack}: d8:sshKeyPath ${config.sshKeyPath} does not exist (swarm mode passes it to ssh for ${config.swarm})`, 'd8:sshKeyPath');
    }
    for (const s of config.slaves) swarmServiceName(s.name);
    const placed = opts.swarmNodes ? { platform: swarmPlatform(opts.swarmNodes), nodes: resolveSwarmNodes(config.slaves, opts.swarmNodes) } : null;
    return {
      swarm: { manager: config.swarm, placed },
      slaves: config.slaves.map((slave) => ({ slave, token: pulumi.secret(tokenFor(slave.name)), installTimeoutSeconds: 0 })),
    };
  }
  const needsKey = config.slaves.some((s) => !s.local);
  const privateKey = needsKey ? pulumi.secret(loadSshPrivateKey(config).text) : undefined;
  return {
    swarm: null,
    slaves: config.slaves.map((slave, i) => ({
      slave,
      token: pulumi.secret(tokenFor(slave.name)),
      connection: slave.local ? undefined : slaveConnection(config.stack, slave, i, privateKey!, opts.knownHosts),
      installTimeoutSeconds: opts.installTimeoutSeconds ?? installTimeoutSeconds(slave, config),
    })),
  };
}

export function createFleet(config: FleetConfig, bundle: BundleRef, opts: CreateFleetOptions = {}): Fleet {
  const { swarm: swarmPlan, slaves: plans } = validateFleet(config, opts);
  const common = { commit: bundle.versionInfo.commit, bundleHash: bundle.hash };

  if (swarmPlan) {
    const placed = swarmPlan.placed;
    if (!placed) throw new RangeError('swarm mode: createFleet needs the swarm\'s nodes (the swarmNodes option)');
    const swarm = new SwarmAgent(swarmResourceNames().component, {
      manager: swarmPlan.manager,
      bundle,
      slaves: plans.map((p) => ({ name: p.slave.name, token: p.token, node: placed.nodes[p.slave.name], agentPort: p.slave.agentPort })),
      sshKeyPath: config.sshKeyPath,
      baseImage: config.baseImage,
      imageRepository: config.swarmImage,
      platform: placed.platform,
      keepImages: config.swarmKeepImages,
    }, opts.resourceOptions);
    const slaves = Object.fromEntries(config.slaves.map((s) => [s.name, { endpoint: agentEndpoint(s), strategy: 'docker' as const, mode: 'swarm' as const }]));
    const services = pulumi.all(Object.fromEntries(Object.entries(swarm.services).map(([n, svc]) => [n, svc.name])));
    return { hosts: {}, swarm, outputs: { ...common, slaves: pulumi.output(slaves), swarmServices: services } };
  }

  const hosts: Record<string, SlaveHost> = {};
  for (const plan of plans) {
    // Top-level (no parent): the URNs must stay exactly what infra/urns.ts computes.
    hosts[plan.slave.name] = new SlaveHost(plan.slave.name, {
      slave: plan.slave,
      bundle: opts.slaveBundles?.[plan.slave.name] ?? bundle,
      token: plan.token,
      connection: plan.connection,
      installAttempts: config.installAttempts,
      installDelaySeconds: config.installDelaySeconds,
      installTimeoutSeconds: plan.installTimeoutSeconds,
      baseImage: config.baseImage,
      runtime: opts.runtimes?.[plan.slave.name],
    }, opts.resourceOptions);
  }
  const slaves = pulumi.all(Object.fromEntries(Object.entries(hosts).map(([name, h]) => [name,
    pulumi.all([h.endpoint, h.strategy]).apply(([endpoint, strategy]) => ({
      endpoint, strategy, mode: (h.local ? 'local' : 'ssh') as SlaveOutput['mode'],
    }))])));
  const installs = pulumi.all(Object.fromEntries(Object.entries(hosts).map(([name, h]) => [name, h.installResult])));
  return { hosts, outputs: { ...common, slaves, installs } };
}
