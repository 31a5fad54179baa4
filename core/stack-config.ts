/**
 * The fleet's stack config (`d8:` namespace of Pulumi.<stack>.yaml): the one zod schema that the
 * Pulumi program, the direct deployer, the master daemon and the CLI all validate with.
 * Secrets may also come from the environment, which wins, so nothing here needs a Pulumi CLI.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import YAML from 'yaml';
import { z } from 'zod';
import { CHANNEL_EVERY_S, DEFAULT_AGENT_PORT, STRATEGIES, StrategySchema, type Strategy } from './protocol';
import { d8Home, ensurePrivateDir } from './paths';
import { tokenFile, weakTokenReason } from './tokens';
import { NodeVersionSchema, RuntimeArchSchema } from './node-runtime';
import { ApprovalRuleSchema, BudgetsSchema, DailySummaryConfigSchema, RequestsApiConfigSchema } from './approval';
import { RolloutPolicySchema, SlaveRolloutSchema } from './rollout';

export const CONFIG_NAMESPACE = 'd8';
export const LOCAL_HOST = 'local';

export const AutoUpdatePolicySchema = z.enum(['auto', 'approve', 'off']);
export type AutoUpdatePolicy = z.infer<typeof AutoUpdatePolicySchema>;

const port = z.number({ invalid_type_error: 'must be a port number' }).int('must be an integer')
  .min(1, 'must be between 1 and 65535').max(65535, 'must be between 1 and 65535');

export const SlaveConfigSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lowercase letters, digits and dashes (a URN-safe name)'),
  /** A hostname or IP reachable over SSH, or `local` for the master itself (no SSH). */
  host: z.string().min(1, 'must not be empty'),
  user: z.string().min(1).optional(),
  sshPort: port.default(22),
  agentPort: port.default(DEFAULT_AGENT_PORT),
  /** Address the master uses for the agent's HTTP API (default: `host`, or 127.0.0.1 for local). */
  agentHost: z.string().min(1).optional(),
  strategies: z.array(StrategySchema, { invalid_type_error: `must be a list of ${STRATEGIES.join(', ')}` })
    .nonempty('must name at least one strategy')
    .refine((s) => new Set(s).size === s.length, 'must not repeat a strategy')
    .default([...STRATEGIES]),
  autoUpdate: AutoUpdatePolicySchema.optional(),
  /** A known_hosts-style public host key; when set, the SSH connection checks it. */
  hostKey: z.string().min(1).optional(),
  /** A raw `pulumi up`: ship the Node.js runtime for this arch with the bundle (`d8 up` probes the host instead). */
  arch: RuntimeArchSchema.optional(),
  // Issue 18: what a task may ask for (`d8 exec --any --needs gpu`), besides what the agent reports.
  labels: z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be lowercase letters, digits, dots, dashes or underscores'))
    .refine((l) => new Set(l).size === l.length, 'must not repeat a label').default([]),
  // issue 14: this slave's place in a rollout (canary first, never canary, last) and its own health gate.
  rollout: SlaveRolloutSchema.optional(),
  /** Swarm mode: the node (hostname, ID or address) this slave's agent service is pinned to; default: the node whose hostname or address is `host`. */
  swarmNode: z.string().min(1).optional(),
}).strict();
export type SlaveConfigInput = z.input<typeof SlaveConfigSchema>;

/** `d8:dashboard`: the master's web dashboard and /metrics. Off loopback it requires a login. */
export const DashboardConfigSchema = z.object({
  enabled: z.boolean().default(true),
  port: port.default(7500),
  /** An IP address or `localhost`; anything but 127.0.0.1, ::1 or localhost requires the dashboard token. */
  bind: z.string().trim().min(1, 'must be an IP address or localhost').default('127.0.0.1'),
  /** Behind an HTTPS reverse proxy: trust X-Forwarded-Proto/For (Secure cookies, per-client login limits). */
  trustProxy: z.boolean().default(false),
}).strict();
export type DashboardConfig = z.infer<typeof DashboardConfigSchema>;

export const RETRY_INTERVAL_DEFAULT_S = 5;

/**
 * Issue 23: how much deploy history (with its build logs) and how many control commands the master
 * keeps. 20 deploys per slave cover a day of failing update retries at their backoff and are a few MB
 * of build logs for a 10-slave fleet; 30 days cover a month of history for the dashboard. 5,000
 * decided requests and 5,000 delivered alerts are a few MB of master.db at most.
 */
export const RetentionConfigSchema = z.object({
  /** Finished deploys (and their build logs) and done control commands kept per slave, newest first. */
  perSlave: z.number().int().min(1).max(10000).default(20),
  /** Older rows and build logs go, except each slave's newest deploy and command. */
  days: z.number().positive().max(3650).default(30),
  /** Decided requests (rejected, completed, approved with no action left to run) kept, newest first; their spend stays counted. */
  requests: z.number().int().min(1).max(1_000_000).default(5000),
  /** Decided requests last changed longer ago than this go too. */
  requestDays: z.number().positive().max(3650).default(365),
  /** Delivered alerts kept (the dashboard's event timeline), newest first. */
  alerts: z.number().int().min(1).max(1_000_000).default(5000),
}).strict();
export type RetentionConfig = z.infer<typeof RetentionConfigSchema>;
export type RetentionConfigInput = z.input<typeof RetentionConfigSchema>;

/** Issue 25: the channel the master holds to each agent (GET /api/channel): a closed one is a check at once. */
export const ChannelConfigSchema = z.object({
  enabled: z.boolean().default(true),
  heartbeatSeconds: z.number().int().min(CHANNEL_EVERY_S.min).max(CHANNEL_EVERY_S.max).default(CHANNEL_EVERY_S.default),
}).strict();
export type ChannelConfig = z.infer<typeof ChannelConfigSchema>;

export const FleetConfigSchema = z.object({
  slaves: z.array(SlaveConfigSchema).default([]),
  autoUpdate: AutoUpdatePolicySchema.default('auto'),
  checkIntervalSeconds: z.number().positive().max(86400).default(30),
  // Issue 12 (reactions in seconds): a failing slave is re-checked at this interval until it is dead.
  retryIntervalSeconds: z.number().positive().max(86400).default(RETRY_INTERVAL_DEFAULT_S),
  agentToken: z.string().optional(),
  sshPrivateKey: z.string().optional(),
  sshKeyPath: z.string().optional(),
  telegramToken: z.string().optional(),
  /** One id, or a comma-separated list. */
  telegramChatIds: z.union([z.string(), z.number(), z.array(z.union([z.string(), z.number()]))]).optional(),
  /** `ssh://user@host` of a swarm manager: the agent runs as a global docker service instead. */
  swarm: z.string().regex(/^ssh:\/\/[^@\s]+@[^\s]+$/, 'must look like ssh://user@host').optional(),
  /** Swarm mode: registry repository the agent image is pushed to (e.g. registry.lan:5000/d8-agent). */
  swarmImage: z.string().regex(/^[a-z0-9][a-z0-9._:/-]*$/, 'must be an image repository without a tag, e.g. registry.lan:5000/d8-agent').optional(),
  // issue 17: swarm images kept on the manager for a rollback, the running release included (default 3).
  swarmKeepImages: z.number().int().min(1).max(50).optional(),
  /** pip requirements installed for python tasks (the bundle's requirements.txt). */
  requirements: z.array(z.string().min(1)).default([]),
  installAttempts: z.number().int().min(1).max(10).default(3),
  installDelaySeconds: z.number().min(0).max(600).default(10),
  /** Base image for the docker strategy (default node:22-bookworm-slim; must exist on the slave or be pullable there). */
  baseImage: z.string().min(1).optional(),
  dashboard: DashboardConfigSchema.default({}),
  /** Where the master fetches the Node.js runtime it ships to hosts without node (core/node-runtime.ts). */
  nodeDistUrl: z.string().url('must be a URL like https://nodejs.org/dist').optional(),
  /** The shipped runtime's version (default: the pinned Node 22 LTS in core/node-runtime.ts). */
  nodeVersion: NodeVersionSchema.optional(),
  // Issue 16: requests filed over the API, auto-approval rules (ordered, first match wins), monthly budgets, the daily summary.
  approvalRules: z.array(ApprovalRuleSchema).default([]),
  budgets: BudgetsSchema.default({}),
  dailySummary: DailySummaryConfigSchema.default({}),
  requestsApi: RequestsApiConfigSchema.default({}),
  // issue 14: safe rollouts; when set, behind slaves are updated canary first, then in gated batches.
  rollout: RolloutPolicySchema.optional(),
  retention: RetentionConfigSchema.default({}),
  channel: ChannelConfigSchema.default({}),
}).strict();

export type FleetConfigInput = z.input<typeof FleetConfigSchema>;

type ParsedSlave = z.infer<typeof SlaveConfigSchema>;
type ParsedFleet = z.infer<typeof FleetConfigSchema>;

/**
 * A slave as every user of the config sees it: the schema's fields, with what resolution fills in
 * (`local`, the SSH user, the agent's address, the fleet's auto-update policy) no longer optional.
 */
export type SlaveConfig = Omit<ParsedSlave, 'user' | 'agentHost' | 'autoUpdate' | 'strategies' | 'labels'> & {
  /** Optional in hand-built configs (none). */
  labels?: string[];
  local: boolean;
  user: string;
  agentHost: string;
  autoUpdate: AutoUpdatePolicy;
  strategies: Strategy[];
};

/**
 * The resolved fleet: the schema's fields with environment overrides applied, the stack name, chat
 * ids as a list, and resolved slaves. `dashboard` may be absent in configs built by hand (tests,
 * benches): the schema's defaults apply then.
 */
export type FleetConfig = Omit<ParsedFleet, 'slaves' | 'telegramChatIds' | 'dashboard' | 'retryIntervalSeconds' | RequestKeys> & {
  stack: string;
  /** Absent in configs built by hand: RETRY_INTERVAL_DEFAULT_S then. */
  retryIntervalSeconds?: number;
  slaves: SlaveConfig[];
  telegramChatIds: string[];
  dashboard?: DashboardConfig;
} & Partial<Pick<ParsedFleet, RequestKeys>>;
/** Issue 16's keys and issue 23's retention: optional in hand-built configs (the schema's defaults apply). */
type RequestKeys = 'approvalRules' | 'budgets' | 'dailySummary' | 'requestsApi' | 'retention' | 'channel';

export class ConfigError extends Error {
  constructor(message: string, readonly key?: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function keyOf(pathParts: Array<string | number>, raw: Record<string, unknown>): string {
  let key = `${CONFIG_NAMESPACE}:${String(pathParts[0] ?? '')}`;
  const slaves = raw.slaves as Array<{ name?: unknown }> | undefined;
  for (let i = 1; i < pathParts.length; i++) {
    const p = pathParts[i];
    if (typeof p === 'number') {
      key += `[${p}]`;
      if (i === 1 && pathParts[0] === 'slaves' && slaves?.[p] && typeof slaves[p].name === 'string') {
        key += ` (${slaves[p].name as string})`;
      }
    } else key += `.${p}`;
  }
  return key;
}

export interface ResolveOptions {
  stack: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Refuse a remote slave without SSH key material (default). A monitoring master passes false: it
   * checks every slave and asks a person where a deploy would need the key (see sshKeyMissing).
   */
  requireSshKey?: boolean;
}

/** Whether deploying `slave` needs an SSH key the config does not have. */
export function sshKeyMissing(c: Pick<FleetConfig, 'sshPrivateKey' | 'sshKeyPath' | 'swarm'>, slave: Pick<SlaveConfig, 'local'>): boolean {
  return !slave.local && !c.sshPrivateKey && !c.sshKeyPath && !c.swarm;
}

/**
 * Validates the raw `d8:` values (keys without the namespace) and applies defaults and environment
 * overrides. Throws ConfigError naming the key (and the slave) on the first problem.
 */
export function resolveFleetConfig(raw: Record<string, unknown>, opts: ResolveOptions): FleetConfig {
  const env = opts.env ?? process.env;
  const parsed = FleetConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.code === 'unrecognized_keys'
      ? keyOf(issue.path, raw) + (issue.path.length ? '.' : '') + issue.keys.join(', ')
      : keyOf(issue.path, raw);
    const msg = issue.code === 'unrecognized_keys' ? 'is not a known key' : issue.message;
    throw new ConfigError(`stack ${opts.stack}: ${where.replace(/:$/, ':<root>')} ${msg}`, where);
  }
  const c = parsed.data;
  const seen = new Map<string, number>();
  c.slaves.forEach((s, i) => {
    if (seen.has(s.name)) {
      throw new ConfigError(`stack ${opts.stack}: d8:slaves[${i}].name "${s.name}" is used twice (also slaves[${seen.get(s.name)}])`, `d8:slaves[${i}].name`);
    }
    seen.set(s.name, i);
  });

  const envOr = (k: string, v: string | undefined) => (env[k] && env[k]!.trim() !== '' ? env[k] : v);
  const sshPrivateKey = envOr('D8_SSH_PRIVATE_KEY', c.sshPrivateKey);
  const sshKeyPath = envOr('D8_SSH_KEY_PATH', c.sshKeyPath);
  const chat = envOr('TELEGRAM_CHAT_ID', c.telegramChatIds === undefined ? undefined : String(
    Array.isArray(c.telegramChatIds) ? c.telegramChatIds.join(',') : c.telegramChatIds));

  const slaves: SlaveConfig[] = c.slaves.map((s, i) => {
    const local = s.host === LOCAL_HOST;
    if (opts.requireSshKey !== false && sshKeyMissing({ sshPrivateKey, sshKeyPath, swarm: c.swarm }, { local })) {
      throw new ConfigError(
        `stack ${opts.stack}: d8:slaves[${i}] (${s.name}) is a remote host but no SSH key is configured: ` +
        'set d8:sshKeyPath, the secret d8:sshPrivateKey, or D8_SSH_KEY_PATH / D8_SSH_PRIVATE_KEY', 'd8:sshKeyPath');
    }
    if (!local && !s.user) {
      throw new ConfigError(`stack ${opts.stack}: d8:slaves[${i}] (${s.name}).user is required for a remote host`, `d8:slaves[${i}].user`);
    }
    return {
      name: s.name,
      host: s.host,
      local,
      user: s.user ?? os.userInfo().username,
      sshPort: s.sshPort,
      agentPort: s.agentPort,
      agentHost: s.agentHost ?? (local ? '127.0.0.1' : s.host),
      strategies: [...s.strategies],
      autoUpdate: s.autoUpdate ?? c.autoUpdate,
      hostKey: s.hostKey,
      arch: s.arch,
      labels: [...s.labels],
      ...(s.rollout ? { rollout: s.rollout } : {}),
      ...(s.swarmNode ? { swarmNode: s.swarmNode } : {}),
    };
  });
  const agentPorts = new Map<string, string>();
  for (const s of slaves) {
    const k = `${s.agentHost}:${s.agentPort}`;
    if (agentPorts.has(k)) {
      throw new ConfigError(`stack ${opts.stack}: d8:slaves (${s.name}).agentPort ${s.agentPort} on ${s.agentHost} is already used by ${agentPorts.get(k)}`, 'd8:slaves.agentPort');
    }
    agentPorts.set(k, s.name);
  }
  if (!c.swarm) {
    // Swarm mode pins each slave's own service to its node (infra/swarm-docker.ts resolveSwarmNodes).
    const odd = c.slaves.findIndex((s) => s.swarmNode !== undefined);
    if (odd >= 0) throw new ConfigError(`stack ${opts.stack}: d8:slaves[${odd}].swarmNode is only used in swarm mode: set d8:swarm too, or remove it`, `d8:slaves[${odd}].swarmNode`);
    if (c.swarmImage) throw new ConfigError(`stack ${opts.stack}: d8:swarmImage is only used in swarm mode: set d8:swarm too, or remove it`, 'd8:swarmImage');
  }

  return {
    stack: opts.stack,
    slaves,
    autoUpdate: c.autoUpdate,
    checkIntervalSeconds: c.checkIntervalSeconds,
    retryIntervalSeconds: c.retryIntervalSeconds,
    agentToken: envOr('D8_AGENT_TOKEN', c.agentToken),
    sshPrivateKey,
    sshKeyPath: sshKeyPath ? expandHome(sshKeyPath) : undefined,
    telegramToken: envOr('TELEGRAM_TOKEN', c.telegramToken),
    telegramChatIds: chat ? chat.split(',').map((x) => x.trim()).filter(Boolean) : [],
    swarm: c.swarm,
    swarmImage: c.swarmImage,
    swarmKeepImages: c.swarmKeepImages,
    requirements: c.requirements,
    installAttempts: c.installAttempts,
    installDelaySeconds: c.installDelaySeconds,
    baseImage: c.baseImage,
    dashboard: c.dashboard,
    nodeDistUrl: c.nodeDistUrl,
    nodeVersion: c.nodeVersion,
    approvalRules: c.approvalRules,
    budgets: c.budgets,
    dailySummary: c.dailySummary,
    requestsApi: c.requestsApi,
    rollout: c.rollout,
    retention: c.retention,
    channel: c.channel,
  };
}

function expandHome(p: string): string {
  return p.startsWith('~/') ? path.join(os.homedir(), p.slice(2)) : p;
}

/** Pulumi stores a secret as `{ secure: "…" }`; without the Pulumi CLI we cannot decrypt it. */
function isEncryptedSecret(v: unknown): boolean {
  return !!v && typeof v === 'object' && 'secure' in (v as Record<string, unknown>);
}

/** Whether the schema of top-level key `key` is a plain string (its stack-file value is kept verbatim). */
export function isStringKey(key: string): boolean {
  let t: z.ZodTypeAny | undefined = (FleetConfigSchema.shape as Record<string, z.ZodTypeAny>)[key];
  while (t instanceof z.ZodOptional || t instanceof z.ZodDefault || t instanceof z.ZodEffects) {
    t = t instanceof z.ZodEffects ? t.innerType() : t._def.innerType;
  }
  return t instanceof z.ZodString;
}

/**
 * `pulumi config set` (and any stack file the CLI rewrites, e.g. to add `encryptionsalt`) stores
 * top-level scalars as strings (`d8:installAttempts: "2"`); the Pulumi program reads them as JSON.
 * Same here, so the master and the CLI read what the program reads.
 */
function stackValue(key: string, v: unknown): unknown {
  if (typeof v !== 'string' || isStringKey(key)) return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v; // not JSON: zod names the key and the expected type
  }
}

/** The `d8:` values of a stack file, namespace stripped; encrypted secrets are left out. */
export function readStackFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read stack file ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`stack file ${file} is not valid YAML: ${(err as Error).message}`);
  }
  const config = (doc && typeof doc === 'object' ? (doc as Record<string, unknown>).config : undefined) ?? {};
  if (typeof config !== 'object' || Array.isArray(config)) throw new ConfigError(`stack file ${file}: "config" must be a mapping`);
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config as Record<string, unknown>)) {
    if (!k.startsWith(`${CONFIG_NAMESPACE}:`) || isEncryptedSecret(v)) continue;
    const key = k.slice(CONFIG_NAMESPACE.length + 1);
    raw[key] = stackValue(key, v);
  }
  return raw;
}

export function stackFilePath(repoDir: string, stack: string): string {
  return path.join(repoDir, `Pulumi.${stack}.yaml`);
}

/** Loads Pulumi.<stack>.yaml from `repoDir` and resolves it; the `dev` stack gets a generated token. */
export function loadFleetConfig(repoDir: string, stack: string, env: NodeJS.ProcessEnv = process.env, opts: { requireSshKey?: boolean } = {}): FleetConfig {
  const file = stackFilePath(repoDir, stack);
  if (!fs.existsSync(file)) {
    throw new ConfigError(`no stack file for stack "${stack}": ${file} does not exist (create it, or pick a stack with --stack)`);
  }
  return withDevToken(resolveFleetConfig(readStackFile(file), { stack, env, requireSshKey: opts.requireSshKey }), env);
}

/** The dev stack needs no secrets from the user: without a configured token it gets the generated one. */
export function withDevToken(config: FleetConfig, env: NodeJS.ProcessEnv = process.env): FleetConfig {
  if (!config.agentToken && config.stack === 'dev') config.agentToken = devAgentToken(env);
  return config;
}

/** The dev stack's agent token: generated on first use, kept in D8_HOME with mode 0600. */
export function devAgentToken(env: NodeJS.ProcessEnv = process.env): string {
  return tokenFile(path.join(ensurePrivateDir(d8Home(env)), 'dev-agent-token')).token;
}

/**
 * The fleet token (d8:agentToken / D8_AGENT_TOKEN) where one is still needed, or a ConfigError that
 * says why and where to set it. Per-slave tokens (core/slave-tokens.ts) need none.
 */
export function requireAgentToken(config: FleetConfig, neededFor?: string): string {
  const reason = weakTokenReason(config.agentToken);
  if (reason) {
    throw new ConfigError(`stack ${config.stack}: agent token unusable (${reason})${neededFor ? `; ${neededFor} needs the fleet token` : ''}: ` +
      'set the secret d8:agentToken (`pulumi config set --secret d8:agentToken …`) or D8_AGENT_TOKEN', 'd8:agentToken');
  }
  return config.agentToken!;
}

/** The fleet token when one is set (agents deployed before per-slave tokens still use it); a weak one is a ConfigError. */
export function optionalAgentToken(config: FleetConfig): string | undefined {
  return config.agentToken === undefined || config.agentToken === '' ? undefined : requireAgentToken(config);
}

export function findSlave(config: FleetConfig, name: string): SlaveConfig {
  const slave = config.slaves.find((s) => s.name === name);
  if (!slave) {
    throw new ConfigError(`stack ${config.stack} has no slave named "${name}" (it has: ${config.slaves.map((s) => s.name).join(', ') || 'none'})`);
  }
  return slave;
}
