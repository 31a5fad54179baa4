/**
 * The agent's wire protocol: the one source of truth for every request and response shape on
 * port 7600. The agent validates what it receives with these schemas and the master parses what it
 * gets back with the same ones; neither side re-declares them.
 */
import { z } from 'zod';

export const DEFAULT_AGENT_PORT = 7600;

export const STRATEGIES = ['docker', 'venv', 'native'] as const;
export const StrategySchema = z.enum(STRATEGIES);
export type Strategy = z.infer<typeof StrategySchema>;

export const ExecutionMethodSchema = z.enum(['auto', ...STRATEGIES]);
export type ExecutionMethod = z.infer<typeof ExecutionMethodSchema>;

export const TaskKindSchema = z.enum(['shell', 'python']);
export type TaskKind = z.infer<typeof TaskKindSchema>;

/** Limits both sides agree on. */
export const LIMITS = {
  /** Largest request body the agent accepts (413 beyond). */
  maxBodyBytes: 256 * 1024,
  /** Deepest JSON nesting the agent parses (issue 12: deep nesting cost 100 MB of memory to parse); requests are flat. */
  maxJsonDepth: 32,
  /** Largest command or python source accepted. */
  maxCommandChars: 64 * 1024,
  /** Combined stdout+stderr kept per execution (`truncated: true` beyond). */
  maxOutputBytes: 1024 * 1024,
  defaultTimeoutS: 60,
  maxTimeoutS: 3600,
  /** Channels (GET /api/channel) open at once; the master holds one, the rest are for a second master or a restart's overlap. */
  maxChannels: 4,
} as const;

export const VersionFieldsSchema = z.object({
  branch: z.string(),
  commit: z.string(),
  version: z.string(),
  deployed_at: z.string(),
});
export type VersionFields = z.infer<typeof VersionFieldsSchema>;

/** GET /api/version */
export const VersionResponseSchema = VersionFieldsSchema;
export type VersionResponse = z.infer<typeof VersionResponseSchema>;

export const ExecutionMethodsSchema = z.object({
  docker: z.boolean(),
  venv: z.boolean(),
  native: z.boolean(),
});
export type ExecutionMethods = z.infer<typeof ExecutionMethodsSchema>;

/**
 * What keeps the agent running, from the installer: a systemd system unit, a systemd user unit with
 * linger, a crontab @reboot entry (plus setsid now), setsid alone, or a container restart policy.
 */
export const SUPERVISORS = ['system-unit', 'user-unit', 'cron', 'setsid', 'container'] as const;
export const SupervisorSchema = z.enum(SUPERVISORS);
export type Supervisor = z.infer<typeof SupervisorSchema>;

/** Whether the agent comes back by itself after the host reboots (setsid alone does not). */
export function isRebootSafe(s: Supervisor | null): boolean {
  return s !== null && s !== 'setsid';
}

/** GET /api/health */
export const HealthResponseSchema = VersionFieldsSchema.extend({
  status: z.literal('ok'),
  dirty: z.boolean().optional(),
  uptime_s: z.number().nonnegative(),
  hostname: z.string(),
  node_version: z.string(),
  python_version: z.string().nullable(),
  execution_methods: ExecutionMethodsSchema,
  /** The installer strategy that put this agent in place (null when started by hand). */
  install_strategy: StrategySchema.nullable(),
  /** What keeps the agent running (null: started by hand, or an agent older than this field). */
  supervisor: SupervisorSchema.nullable().default(null),
  /** Whether that supervisor brings the agent back after a reboot. */
  reboot_safe: z.boolean().default(false),
  update_pending: z.boolean(),
  update_failed: z.boolean(),
  /** Tasks running now and how many may run at once (the master routes tasks to the least busy slave). */
  running_executions: z.number().int().nonnegative().default(0),
  max_concurrency: z.number().int().positive().nullable().default(null),
  /** process.arch of the agent (x64, arm64, arm). */
  arch: z.string().nullable().default(null),
});
export type HealthResponse = z.infer<typeof HealthResponseSchema>;

/** POST /api/execute (Bearer). Unknown keys are rejected so a typo is a 400 naming the field. */
export const ExecuteRequestSchema = z
  .object({
    command: z.string().min(1, 'must not be empty').max(LIMITS.maxCommandChars),
    kind: TaskKindSchema.default('shell'),
    method: ExecutionMethodSchema.default('auto'),
    working_dir: z.string().min(1).max(4096).optional(),
    timeout_s: z.number().positive().max(LIMITS.maxTimeoutS).default(LIMITS.defaultTimeoutS),
  })
  .strict();
export type ExecuteRequest = z.input<typeof ExecuteRequestSchema>;
export type ParsedExecuteRequest = z.output<typeof ExecuteRequestSchema>;

export const ExecuteResponseSchema = z.object({
  success: z.boolean(),
  output: z.string(),
  error: z.string().nullable(),
  exit_code: z.number().int().nullable(),
  method: StrategySchema,
  duration_ms: z.number().nonnegative(),
  truncated: z.boolean(),
});
export type ExecuteResponse = z.infer<typeof ExecuteResponseSchema>;

/** POST /api/restart (Bearer) answers 202 with this, then restarts detached. */
export const RestartResponseSchema = z.object({ status: z.literal('restarting') });
export type RestartResponse = z.infer<typeof RestartResponseSchema>;

/**
 * POST /api/token (issue 13, token rotation), authorized by a token the agent accepts: `add` makes the
 * agent accept `token` as well as the one presented (and no other); `retire` keeps only the one
 * presented. The agent keeps the result in its token file, so a restart keeps it.
 */
export const TokenChangeRequestSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('add'), token: z.string().min(1).max(512) }).strict(),
  z.object({ action: z.literal('retire') }).strict(),
]);
export type TokenChangeRequest = z.infer<typeof TokenChangeRequestSchema>;
export const TokenChangeResponseSchema = z.object({ accepted: z.number().int().min(1) });
export type TokenChangeResponse = z.infer<typeof TokenChangeResponseSchema>;

/** Every non-2xx answer. `field` names the offending field on a 400 schema violation. */
export const ErrorResponseSchema = z.object({
  error: z.string(),
  field: z.string().optional(),
});
export type ErrorResponse = z.infer<typeof ErrorResponseSchema>;

export const ROUTES = {
  health: '/api/health',
  version: '/api/version',
  execute: '/api/execute',
  restart: '/api/restart',
  token: '/api/token',
  channel: '/api/channel',
} as const;

/**
 * GET /api/channel?every=S (bearer token): a stream the agent keeps open, one JSON line at a time
 * (application/x-ndjson): its health at once and whenever it changes (uptime and running executions
 * aside), and a heartbeat every S seconds. The master holds one per agent: a closed stream or two
 * missed heartbeats is a death seen in a second instead of at the next sweep.
 */
export const CHANNEL_EVERY_S = { min: 1, max: 60, default: 5 } as const;
export const ChannelLineSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('health'), health: HealthResponseSchema }),
  z.object({ kind: z.literal('heartbeat'), uptime_s: z.number().nonnegative() }),
]);
export type ChannelLine = z.infer<typeof ChannelLineSchema>;
