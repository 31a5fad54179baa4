/**
 * Escalation: what the master cannot fix becomes one INFRASTRUCTURE request (priority high, naming
 * the fix) and one failure alert that points at it, written with the slave's new state in one
 * transaction. Used by recover and update, and directly when the master has no SSH key for a slave.
 */
import type { FailureKind, RecoveryStep } from '../../../core/alerts';
import type { DeployErrorKind, DeployResult } from '../../../core/deploy-result';
import type { SlaveConfig } from '../../../core/stack-config';
import { tail } from '../../../core/text';
import { shortCommit } from '../../../core/version-info';
import type { HumanRequest, RequestAction } from '../../../core/requests';
import type { SlaveRecord } from '../../store/slaves';
import { fixFor } from '../../notify/fix-hints';
import type { ActionContext } from './context';

/** Failures no retry can fix: a person must act first. */
export const NEEDS_A_PERSON: ReadonlySet<DeployErrorKind> = new Set(['auth', 'host_key', 'config', 'unsupported']);

export type EscalationKind = FailureKind | null;

export interface Escalation {
  slave: SlaveConfig;
  alert: 'recovery_failed' | 'provisioning_failed' | 'update_failed';
  error: string;
  errorKind: EscalationKind;
  result: DeployResult | null;
  attempt: number;
  steps?: RecoveryStep[];
  state: SlaveRecord['state'];
  /** What approving the request runs. */
  action: RequestAction;
  /** Slave record changes committed with the request. */
  patch: (req: HumanRequest) => Partial<SlaveRecord>;
}

export function escalate(ctx: ActionContext, e: Escalation): HumanRequest {
  const { slave } = e;
  const fix = fixFor(e.errorKind, slave.name);
  const buildLog = e.result?.buildLogPath ?? null;
  const what = e.alert === 'update_failed'
    ? `${slave.name} cannot be updated to ${shortCommit(e.action.target_commit)}`
    : e.errorKind === 'no_ssh_key' ? `${slave.name} is down and the master cannot redeploy it` : `${slave.name} stays down`;
  const cause = e.errorKind === 'no_ssh_key' ? 'needs SSH' : e.errorKind ?? 'failed';
  const description = [
    `${slave.name} (${slave.host}, agent ${slave.agentHost}:${slave.agentPort}) is ${e.state}.`,
    e.alert === 'update_failed' ? `Updating it failed (attempt ${e.attempt}).` : e.errorKind === 'no_ssh_key' ? '' : `${e.attempt} recovery attempt(s) (restart, redeploy with ${slave.strategies.join(', ')}) failed.`,
    fix ? `Fix: ${fix}` : '',
    `Last error: ${tail(e.error)}`,
    `Build log: ${buildLog ?? 'none'}`,
    `After fixing it: \`d8 ${e.action.kind} ${slave.name}\` (or approve this request to ${e.action.kind}).`,
  ].filter(Boolean).join('\n');
  return ctx.store.db.transaction((): HumanRequest => {
    const req = ctx.store.requests.create({
      type: 'INFRASTRUCTURE', priority: 'high', created_by: 'master',
      title: `${what} (${cause}): fix it, then ${e.action.kind}`.slice(0, 200),
      description,
      action: e.action,
    }, {
      // The failure is announced before the request that answers it.
      announce: (id) => ctx.store.outbox.enqueue(e.alert === 'update_failed'
        ? {
          kind: 'update_failed', stack: ctx.stack, slave: slave.name,
          data: {
            master_commit: e.action.target_commit, error_tail: tail(e.error), error_kind: e.errorKind,
            build_log_path: buildLog, engine: e.result?.engine, attempt: e.attempt, attempts: e.result?.attempts ?? [],
            request_id: id, next_attempt_at: null,
          },
        }
        : {
          kind: e.alert, stack: ctx.stack, slave: slave.name,
          data: {
            error_tail: tail(e.error), error_kind: e.errorKind, build_log_path: buildLog, engine: e.result?.engine,
            attempt: e.attempt, attempts: e.result?.attempts ?? [], strategies: slave.strategies, steps: e.steps ?? [], state: e.state,
            request_id: id,
          },
        }),
    });
    ctx.store.slaves.patch(ctx.stack, slave.name, e.patch(req));
    return req;
  }).immediate();
}

/** A down slave the master can neither restart nor redeploy (no SSH key, agent unreachable). */
export function escalateUnreachable(ctx: ActionContext, slave: SlaveConfig, rec: SlaveRecord): HumanRequest {
  return escalate(ctx, {
    slave, alert: 'recovery_failed', error: rec.last_error ?? 'the agent does not answer', errorKind: 'no_ssh_key', result: null,
    attempt: rec.recovery_attempts, steps: [], state: rec.state, action: { kind: 'retry', slave: slave.name, stack: ctx.stack },
    patch: () => ({ escalated: true }),
  });
}
