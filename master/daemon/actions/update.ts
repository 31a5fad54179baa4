/**
 * Update: redeploy a slave with the master's commit and check it then reports that commit. A
 * failure backs off; a failure no retry can fix (auth, host key, config, no SSH key) is escalated at
 * once, and the master does not try that commit again by itself (`d8 update` / `/update` still do).
 */
import type { SlaveConfig } from '../../../core/stack-config';
import { tail } from '../../../core/text';
import { shortCommit } from '../../../core/version-info';
import { backoffDelay } from '../../backoff';
import type { ControlResult } from '../../store/commands';
import { nowIso } from '../../store/db';
import { fixFor } from '../../notify/fix-hints';
import type { ActionContext } from './context';
import { escalate, NEEDS_A_PERSON } from './escalate';

export async function update(ctx: ActionContext, slave: SlaveConfig, reason: string): Promise<ControlResult> {
  const t = ctx.tuning;
  const master = ctx.masterCommit();
  const rec = ctx.store.slaves.getOrEmpty(ctx.stack, slave.name);
  const sameTarget = rec.update_target === master;
  const attempt = sameTarget ? rec.update_attempts + 1 : 1;
  // A request filed about an older commit says nothing about this one.
  const base = { update_target: master, update_attempts: attempt, update_request_id: sameTarget ? rec.update_request_id : null };
  const automatic = reason !== 'manual';

  if (ctx.sshKeyMissing(slave)) {
    const error = 'no SSH key configured';
    if (automatic) {
      escalate(ctx, {
        slave, alert: 'update_failed', error, errorKind: 'no_ssh_key', result: null, attempt, state: rec.state,
        action: { kind: 'update', slave: slave.name, stack: ctx.stack, target_commit: master },
        patch: (req) => ({ ...base, update_request_id: req.id, next_update_at: null }),
      });
    }
    return { ok: false, action: 'update', message: `${slave.name}: ${error}. ${fixFor('no_ssh_key', slave.name)}`, state: rec.state, commit: rec.commit, build_log_path: null, error_kind: 'no_ssh_key' as const };
  }

  ctx.store.slaves.patch(ctx.stack, slave.name, base);
  const result = await ctx.deploys.deploy(slave, { force: true, reason });
  await ctx.awaitAgent(slave, result.ok ? t.settleMs : 0, (h) => h.commit === master);
  const checked = await ctx.checkAndRecord(slave, master);
  if (result.ok && checked.commit === master && checked.state === 'healthy') {
    ctx.store.db.transaction(() => {
      ctx.store.slaves.patch(ctx.stack, slave.name, { update_attempts: 0, next_update_at: null });
      ctx.store.outbox.enqueue({
        kind: 'update_done', stack: ctx.stack, slave: slave.name,
        data: {
          master_commit: master, previous_commit: rec.commit, slave_commit: checked.commit,
          strategy: result.strategy ?? checked.strategy, build_log_path: result.buildLogPath, engine: result.engine,
        },
      });
    }).immediate();
    return { ok: true, action: 'update', message: `${slave.name} now reports ${shortCommit(master)}`, state: checked.state, commit: checked.commit, build_log_path: result.buildLogPath };
  }

  const error = result.ok
    ? `after the deploy ${slave.name} reports ${shortCommit(checked.commit)}, not the master's ${shortCommit(master)}`
    : (result.error ?? 'deploy failed');
  const kind = result.ok ? null : result.errorKind;
  const hopeless = kind !== null && NEEDS_A_PERSON.has(kind);
  const failed = { ok: false, action: 'update', state: checked.state, commit: checked.commit, build_log_path: result.buildLogPath, error_kind: kind };
  if (hopeless && automatic) {
    escalate(ctx, {
      slave, alert: 'update_failed', error, errorKind: kind, result, attempt, state: checked.state,
      action: { kind: 'update', slave: slave.name, stack: ctx.stack, target_commit: master },
      patch: (req) => ({ update_request_id: req.id, next_update_at: null }),
    });
    return { ...failed, message: `${tail(error, 300)}\n${fixFor(kind, slave.name)}` };
  }
  const next = Date.now() + backoffDelay(attempt, { baseMs: t.updateBackoffMs, maxMs: t.updateBackoffMaxMs, jitter: 0.1 });
  ctx.store.db.transaction(() => {
    ctx.store.slaves.patch(ctx.stack, slave.name, { next_update_at: nowIso(next) });
    ctx.store.outbox.enqueue({
      kind: 'update_failed', stack: ctx.stack, slave: slave.name,
      data: {
        master_commit: master, slave_commit: checked.commit, error_tail: tail(error), error_kind: kind,
        build_log_path: result.buildLogPath, engine: result.engine, attempt, attempts: result.attempts, next_attempt_at: nowIso(next),
      },
    });
  }).immediate();
  const fix = fixFor(hopeless ? kind : null, slave.name);
  return { ...failed, message: fix ? `${error}\n${fix}` : error };
}
