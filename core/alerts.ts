/**
 * Alerts are typed data: the master says what happened (one kind, its own fields) and every notifier
 * (the log, Telegram, the dashboard) decides how to say it. Alerts are stored as JSON in the outbox and
 * parsed back with `AlertSchema`; a row that does not parse (written by an older master) is reported
 * and skipped by its reader, never fatal.
 */
import { z } from 'zod';
import { DriftSchema, SlaveStateSchema } from './fleet-state';
import { DeployEngineSchema, DeployErrorKindSchema } from './deploy-result';
import { InstallAttemptSchema } from './install-result';
import { StrategySchema, SupervisorSchema } from './protocol';
import { PrioritySchema, RequestStatusSchema, RequestTypeSchema } from './requests';
import { AutoUpdatePolicySchema } from './stack-config';
import { BudgetThresholdSchema, MonthSchema, SpendReportSchema } from './approval';

const commit = z.string().nullable();

/** Fields every alert has: where it is about and when it was raised. */
const envelope = {
  stack: z.string().optional(),
  created_at: z.string(),
};
const aboutSlave = { ...envelope, slave: z.string() };

/** What a check saw, shared by the alerts a check raises. */
const checkSnapshot = {
  master_commit: z.string().optional(),
  slave_commit: commit.optional(),
  state: SlaveStateSchema.optional(),
  previous_state: SlaveStateSchema.optional(),
};
/** True when this repeats an alert already sent (resend interval). */
const resend = z.boolean().default(false);

export const VersionMismatchAlertSchema = z.object({
  ...aboutSlave,
  kind: z.literal('version_mismatch'),
  data: z.object({
    ...checkSnapshot,
    master_commit: z.string(),
    slave_commit: commit,
    branch: z.string().nullable().optional(),
    drift: DriftSchema,
    strategy: z.string().nullable().optional(),
    /** The slave's auto-update policy: what the master does about it. */
    auto_update: AutoUpdatePolicySchema.optional(),
    resend,
  }),
});

export const SlaveDeadAlertSchema = z.object({
  ...aboutSlave,
  kind: z.literal('slave_dead'),
  data: z.object({
    ...checkSnapshot,
    error_tail: z.string().default(''),
    failures: z.number().int().optional(),
    /** host:port of the agent. */
    endpoint: z.string().optional(),
    last_seen: z.string().nullable().optional(),
    resend,
  }),
});

export const SlaveRecoveredAlertSchema = z.object({
  ...aboutSlave,
  kind: z.literal('slave_recovered'),
  data: z.object({
    ...checkSnapshot,
    state: SlaveStateSchema.default('healthy'),
    drift: DriftSchema.optional(),
    strategy: z.string().nullable().optional(),
  }),
});

/** The agent's address presented a certificate other than the one its install reported: nothing was sent to it. */
export const AgentImpersonationAlertSchema = z.object({
  ...aboutSlave,
  kind: z.literal('agent_impersonation'),
  data: z.object({
    ...checkSnapshot,
    /** host:port of the agent. */
    endpoint: z.string(),
    /** SHA-256 fingerprints: the pinned one (from the install, over SSH) and the one presented. */
    expected: z.string(),
    presented: z.string().nullable(),
  }),
});

export const UpdateDoneAlertSchema = z.object({
  ...aboutSlave,
  kind: z.literal('update_done'),
  data: z.object({
    master_commit: z.string().optional(),
    previous_commit: commit.optional(),
    slave_commit: commit,
    strategy: z.string().nullable().optional(),
    build_log_path: z.string().nullable().optional(),
    engine: DeployEngineSchema.optional(),
  }),
});

/** A deploy's error kind, or `no_ssh_key`: the master holds no key to deploy with. */
export const FailureKindSchema = z.union([DeployErrorKindSchema, z.literal('no_ssh_key')]);
export type FailureKind = z.infer<typeof FailureKindSchema>;

/** One step of a recovery: a restart request to the agent, or a redeploy. */
export const RecoveryStepSchema = z.object({
  action: z.enum(['restart', 'redeploy']),
  ok: z.boolean(),
  at: z.string(),
  error: z.string().nullable().default(null),
  error_kind: FailureKindSchema.nullable().default(null),
});
export type RecoveryStep = z.infer<typeof RecoveryStepSchema>;

const failureData = {
  error_tail: z.string().default(''),
  error_kind: FailureKindSchema.nullable().optional(),
  build_log_path: z.string().nullable().optional(),
  engine: DeployEngineSchema.optional(),
  attempt: z.number().int().optional(),
  attempts: z.array(InstallAttemptSchema).default([]),
  /** The request filed for a person, when there is one. */
  request_id: z.string().optional(),
};

export const UpdateFailedAlertSchema = z.object({
  ...aboutSlave,
  kind: z.literal('update_failed'),
  data: z.object({
    ...failureData,
    master_commit: z.string().optional(),
    slave_commit: commit.optional(),
    /** When the master tries again by itself (null: it waits for a person). */
    next_attempt_at: z.string().nullable().optional(),
  }),
});

const recoveryData = z.object({
  ...failureData,
  state: SlaveStateSchema.optional(),
  strategies: z.array(StrategySchema).default([]),
  steps: z.array(RecoveryStepSchema).default([]),
});

/** A slave that was running could not be brought back (restart, redeploy): a person must act. */
export const RecoveryFailedAlertSchema = z.object({ ...aboutSlave, kind: z.literal('recovery_failed'), data: recoveryData });
/** A slave that never ran could not be installed with any strategy: a person must act. */
export const ProvisioningFailedAlertSchema = z.object({ ...aboutSlave, kind: z.literal('provisioning_failed'), data: recoveryData });

const requestData = {
  request_id: z.string(),
  request_type: RequestTypeSchema,
  request_status: RequestStatusSchema,
  priority: PrioritySchema,
  title: z.string(),
};

/** A request may be about a slave (its action's) or about nothing in the fleet. */
const aboutRequest = { ...envelope, slave: z.string().nullable() };

export const HumanRequestAlertSchema = z.object({
  ...aboutRequest,
  kind: z.literal('human_request'),
  data: z.object({
    ...requestData,
    description: z.string().default(''),
    estimated_cost: z.number().nullable().default(null),
    created_by: z.string().optional(),
    /** Why the auto-approval rules did not approve it (e.g. over budget), when they tried. */
    auto_note: z.string().optional(),
  }),
});

export const RequestChangedAlertSchema = z.object({
  ...aboutRequest,
  kind: z.literal('request_changed'),
  data: z.object({
    ...requestData,
    previous_status: RequestStatusSchema.optional(),
    note: z.string().default(''),
  }),
});

/** A healthy slave whose agent will not come back after a host reboot (sent once per such spell). */
export const NotRebootSafeAlertSchema = z.object({
  ...aboutSlave,
  kind: z.literal('not_reboot_safe'),
  data: z.object({
    supervisor: SupervisorSchema,
    strategy: z.string().nullable().optional(),
    /** host:port of the agent. */
    endpoint: z.string().optional(),
  }),
});

export const MasterVersionChangedAlertSchema = z.object({
  ...envelope,
  slave: z.null(),
  kind: z.literal('master_version_changed'),
  data: z.object({ master_commit: z.string(), previous_commit: z.string() }),
});

/** Approved costs of a request type reached 80 % or 100 % of its monthly budget (once per month and level). */
export const BudgetThresholdAlertSchema = z.object({
  ...envelope,
  slave: z.null(),
  kind: z.literal('budget_threshold'),
  data: z.object({
    request_type: RequestTypeSchema,
    month: MonthSchema,
    threshold: BudgetThresholdSchema,
    spent: z.number(),
    budget: z.number(),
  }),
});

const summaryRequest = z.object({ request_id: z.string(), request_type: RequestTypeSchema, title: z.string(), estimated_cost: z.number().nullable() });

/** Once a day: what was auto-approved since the last summary, this month's spend, what still waits. */
export const DailySummaryAlertSchema = z.object({
  ...envelope,
  slave: z.null(),
  kind: z.literal('daily_summary'),
  data: z.object({
    day: z.string(),
    since: z.string(),
    auto_approved: z.array(summaryRequest.extend({ rule: z.string() })),
    spend: SpendReportSchema,
    pending: z.array(summaryRequest.extend({ priority: PrioritySchema, request_status: RequestStatusSchema })),
  }),
});

// issue 14: a rollout's gate failed (the slave rolled back, the rest left alone), or it finished.
export const RolloutHaltedAlertSchema = z.object({
  ...envelope,
  slave: z.null(),
  kind: z.literal('rollout_halted'),
  data: z.object({
    commit: z.string(),
    stage: z.number().int(),
    failed: z.array(z.object({ slave: z.string(), error: z.string(), rolled_back_to: z.string().nullable(), rollback_ok: z.boolean() })),
    /** Slaves the rollout did not touch: they stay on their release. */
    untouched: z.array(z.string()),
    request_id: z.string().nullable(),
  }),
});

export const RolloutDoneAlertSchema = z.object({
  ...envelope,
  slave: z.null(),
  kind: z.literal('rollout_done'),
  data: z.object({ commit: z.string(), slaves: z.array(z.string()), seconds: z.number().nonnegative() }),
});

export const AlertSchema = z.discriminatedUnion('kind', [
  VersionMismatchAlertSchema,
  SlaveDeadAlertSchema,
  SlaveRecoveredAlertSchema,
  AgentImpersonationAlertSchema,
  UpdateDoneAlertSchema,
  UpdateFailedAlertSchema,
  RecoveryFailedAlertSchema,
  ProvisioningFailedAlertSchema,
  HumanRequestAlertSchema,
  RequestChangedAlertSchema,
  NotRebootSafeAlertSchema,
  MasterVersionChangedAlertSchema,
  BudgetThresholdAlertSchema,
  DailySummaryAlertSchema,
  RolloutHaltedAlertSchema,
  RolloutDoneAlertSchema,
]);
export type Alert = z.infer<typeof AlertSchema>;
export type AlertKind = Alert['kind'];
export const ALERT_KINDS = AlertSchema.options.map((o) => o.shape.kind.value) as AlertKind[];
export type AlertOf<K extends AlertKind> = Extract<Alert, { kind: K }>;

/** What a writer hands the outbox: `created_at` is stamped on enqueue, defaulted fields may be left out. */
export type AlertInput = z.input<typeof AlertSchema> extends infer T
  ? T extends { created_at: string } ? Omit<T, 'created_at'> & { created_at?: string } : never
  : never;

/** Good news (logged at info, not warn). */
export const isGoodNews = (a: Pick<Alert, 'kind'>): boolean => a.kind === 'slave_recovered' || a.kind === 'update_done' || a.kind === 'rollout_done';
