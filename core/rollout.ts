/**
 * Safe rollouts (issue 14): the policy in the stack config (`d8:rollout`) and the persisted shape of
 * a rollout, shared by the daemon, the store, the CLI and the alerts.
 */
import { z } from 'zod';

export const RolloutPolicySchema = z.object({
  /** Slaves updated first, alone, before any batch. */
  canary: z.number().int().min(0).max(100).default(1),
  /** Slaves per batch after the canary. */
  batchSize: z.number().int().min(1).max(100).default(2),
  /** How long every slave of a stage must stay healthy at the new commit before the next stage starts. */
  healthyForSeconds: z.number().min(0).max(86_400).default(30),
  /** Failed slaves (each rolled back) that halt the rollout. */
  maxFailures: z.number().int().min(1).max(100).default(1),
}).strict();
export type RolloutPolicy = z.infer<typeof RolloutPolicySchema>;

/**
 * `d8:slaves[i].rollout`: one slave's place in a rollout. `place`: `canary` (taken as the canary
 * before any other), `any` (the default: the canary when its turn in stack order comes, else a
 * batch), `batch` (never the canary), `last` (never the canary; in the final batches, after every
 * other slave passed). `healthyForSeconds` overrides the fleet's gate for this slave.
 */
export const SlaveRolloutSchema = z.object({
  place: z.enum(['canary', 'any', 'batch', 'last']).default('any'),
  healthyForSeconds: RolloutPolicySchema.shape.healthyForSeconds.removeDefault().optional(),
}).strict();
export type SlaveRollout = z.infer<typeof SlaveRolloutSchema>;

/**
 * running: stages advance · paused: nothing new starts (a person said so) · halted: the gate failed,
 * a request asks whether to retry · rejected: the person said no · aborted: stopped by a person or
 * superseded by a newer commit (after rejected or aborted, slaves stay where they are until the
 * master's commit changes) · done.
 */
export const RolloutStatusSchema = z.enum(['running', 'paused', 'halted', 'rejected', 'done', 'aborted']);
export type RolloutStatus = z.infer<typeof RolloutStatusSchema>;

/**
 * pending: not touched yet · updating: its deploy started · gate: deployed, being watched ·
 * passed: healthy at the new commit for healthyForSeconds · failed: the deploy or the gate failed ·
 * rolled_back: redeployed with its last good release · rollback_failed: that redeploy failed too.
 */
export const MemberStatusSchema = z.enum(['pending', 'updating', 'gate', 'passed', 'failed', 'rolled_back', 'rollback_failed']);
export type MemberStatus = z.infer<typeof MemberStatusSchema>;

export const RolloutMemberSchema = z.object({
  slave: z.string(),
  /** 0 = the canary stage, then 1, 2, … */
  stage: z.number().int().min(0),
  status: MemberStatusSchema,
  /** The commit it ran when the rollout planned it. */
  from_commit: z.string().nullable(),
  /** When its gate started (the deploy ended well). */
  gate_since: z.string().nullable(),
  error: z.string().nullable(),
  /** Its own gate (d8:slaves[i].rollout.healthyForSeconds when planned); null: the rollout's policy. */
  healthy_for_seconds: z.number().nullable(),
});
export type RolloutMember = z.infer<typeof RolloutMemberSchema>;

export const RolloutSchema = z.object({
  id: z.number().int(),
  stack: z.string(),
  commit: z.string(),
  status: RolloutStatusSchema,
  stage: z.number().int().min(0),
  policy: RolloutPolicySchema,
  failures: z.number().int().min(0),
  request_id: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  members: z.array(RolloutMemberSchema),
});
export type Rollout = z.infer<typeof RolloutSchema>;

/**
 * A rollout of the master's commit that is not done still decides what happens to its slaves: the
 * per-slave policy does not update them behind its back (an aborted or rejected one leaves every
 * slave on its release until the master's commit changes).
 */
export const rolloutHoldsSlaves = (s: RolloutStatus): boolean => s !== 'done';
