/**
 * Recovery of a slave that is down: restart the agent when it answers HTTP (or accepts connections
 * but hangs: the restart request then times out too), else or then redeploy; each step is recorded.
 * Failed attempts back off; after `recoveryAttempts` (or at once for a failure no retry can fix:
 * auth, host key, config, no SSH key) the slave is escalated to a person.
 */
import { hasAgentToken, withAgentToken } from '../../agent-tokens';
import type { RecoveryStep } from '../../../core/alerts';
import type { DeployResult } from '../../../core/deploy-result';
import type { SlaveConfig } from '../../../core/stack-config';
import { tail } from '../../../core/text';
import { shortCommit } from '../../../core/version-info';
import { backoffDelay } from '../../backoff';
import type { ControlResult } from '../../store/commands';
import { nowIso } from '../../store/db';
import { fixFor } from '../../notify/fix-hints';
import type { ActionContext } from './context';
import { escalate, NEEDS_A_PERSON, type EscalationKind } from './escalate';

export type RecoveryReason = 'dead' | 'missing' | 'manual';

export async function recover(ctx: ActionContext, slave: SlaveConfig, why: RecoveryReason): Promise<ControlResult> {
  const t = ctx.tuning;
  const rec = ctx.store.slaves.getOrEmpty(ctx.stack, slave.name);
  const attempt = why === 'manual' ? rec.recovery_attempts : rec.recovery_attempts + 1;
  const steps: RecoveryStep[] = [];
  let result: DeployResult | null = null;
  let back = false;
  let failureKind: EscalationKind = null;

  if (rec.last_error_reachable && hasAgentToken(ctx.config, slave.name)) {
    let error: string | null = null;
    try {
      await withAgentToken(ctx.config, slave.name, (token) => ctx.client.restart(slave, token));
      ctx.log.info({ slave: slave.name, attempt }, `${slave.name}: restart requested`);
      back = await ctx.awaitAgent(slave, t.settleMs);
      if (!back) error = `the agent did not answer within ${Math.round(t.settleMs / 1000)}s of the restart`;
    } catch (err) {
      error = (err as Error).message;
    }
    steps.push({ action: 'restart', ok: back, at: nowIso(), error, error_kind: null });
    if (!back) ctx.log.warn({ slave: slave.name, err: error }, `${slave.name}: restart did not bring it back; redeploying`);
  }
  if (!back) {
    if (ctx.sshKeyMissing(slave)) {
      failureKind = 'no_ssh_key';
      steps.push({ action: 'redeploy', ok: false, at: nowIso(), error: 'no SSH key configured', error_kind: 'no_ssh_key' });
    } else {
      result = await ctx.deploys.deploy(slave, { force: true, reason: why });
      back = result.ok && (await ctx.awaitAgent(slave, t.settleMs));
      steps.push({ action: 'redeploy', ok: back, at: nowIso(), error: back ? null : result.error ?? 'the agent did not answer after the deploy', error_kind: result.errorKind });
      if (!result.ok) failureKind = result.errorKind;
    }
  }
  const action = steps.map((s) => s.action).join('+');
  const checked = await ctx.checkAndRecord(slave, ctx.masterCommit());
  if (back && checked.state !== 'dead' && checked.state !== 'pending') {
    ctx.store.slaves.patch(ctx.stack, slave.name, { recovery_attempts: 0, next_recovery_at: null, escalated: false });
    return { ok: true, action, message: `${slave.name} is back (${checked.state}, ${shortCommit(checked.commit)})`, state: checked.state, commit: checked.commit, build_log_path: result?.buildLogPath ?? null };
  }

  const error = steps.filter((s) => !s.ok && s.error).map((s) => `${s.action}: ${s.error}`).join('; ') || checked.last_error || 'the slave did not come back';
  const next = Date.now() + backoffDelay(Math.max(1, attempt), { baseMs: t.recoveryBackoffMs, maxMs: t.recoveryBackoffMaxMs, jitter: 0.1 });
  const hopeless = failureKind === 'no_ssh_key' || (failureKind !== null && NEEDS_A_PERSON.has(failureKind));
  const escalateNow = why !== 'manual' && (hopeless || attempt >= t.recoveryAttempts);
  const patch = { recovery_attempts: attempt, next_recovery_at: nowIso(next) };
  if (escalateNow) {
    escalate(ctx, {
      slave, alert: why === 'missing' ? 'provisioning_failed' : 'recovery_failed', error, errorKind: failureKind, result, attempt, steps,
      state: checked.state, action: { kind: 'retry', slave: slave.name, stack: ctx.stack },
      patch: () => ({ ...patch, escalated: true }),
    });
  } else {
    ctx.store.slaves.patch(ctx.stack, slave.name, patch);
  }
  ctx.log.warn({ slave: slave.name, attempt, steps: action, error_kind: failureKind, escalated: escalateNow, err: tail(error, 200) }, `${slave.name}: recovery attempt ${attempt} failed`);
  const fix = fixFor(hopeless ? failureKind : null, slave.name);
  return {
    ok: false, action, message: `${slave.name} is still ${checked.state}: ${tail(error, 300)}${fix ? `\n${fix}` : ''}`,
    state: checked.state, commit: checked.commit, build_log_path: result?.buildLogPath ?? null, error_kind: failureKind,
  };
}
