/**
 * One line per alert, for the log notifier, `d8 status` and Telegram's plain fallback. The full
 * messages are each notifier's own (master/telegram/format.ts).
 */
import type { Alert } from '../../core/alerts';
import { shortCommit } from '../../core/version-info';

/** An amount as the budgets are written: no currency, at most two decimals. */
export const money = (n: number): string => (Math.round(n * 100) / 100).toString();

export function alertHeadline(a: Alert): string {
  const again = 'resend' in a.data && a.data.resend ? ' (still)' : '';
  switch (a.kind) {
    case 'version_mismatch':
      return `${a.slave} version mismatch${again}: ${shortCommit(a.data.slave_commit)} is ${a.data.drift} (master ${shortCommit(a.data.master_commit)})`;
    case 'slave_dead':
      return `${a.slave} is dead${again}${a.data.failures ? ` (${a.data.failures} failed checks)` : ''}: ${a.data.error_tail || 'no answer'}`;
    case 'slave_recovered':
      return `${a.slave} recovered (${a.data.state}, ${shortCommit(a.data.slave_commit)})`;
    case 'agent_impersonation':
      return `${a.slave}: ${a.data.endpoint} presented another certificate (${a.data.presented ?? 'none'}, pinned ${a.data.expected}): possible impersonation, nothing sent; redeploy ${a.slave} if its key pair was replaced`;
    case 'update_done':
      return `${a.slave} updated to ${shortCommit(a.data.slave_commit ?? a.data.master_commit)}`;
    case 'update_failed':
      return `update of ${a.slave} to ${shortCommit(a.data.master_commit)} failed${a.data.attempt ? ` (attempt ${a.data.attempt})` : ''}${a.data.error_kind ? ` [${a.data.error_kind}]` : ''}`;
    case 'recovery_failed':
      return `${a.slave} could not be recovered${a.data.attempt ? ` after ${a.data.attempt} attempt(s)` : ''}${a.data.error_kind ? ` [${a.data.error_kind}]` : ''}`;
    case 'provisioning_failed':
      return `provisioning of ${a.slave} failed${a.data.strategies.length ? ` (${a.data.strategies.join(', ')})` : ''}${a.data.error_kind ? ` [${a.data.error_kind}]` : ''}`;
    case 'human_request':
      return `New human request ${a.data.request_id}: ${a.data.title}`;
    case 'request_changed':
      return `Request ${a.data.request_id} is now ${a.data.request_status}: ${a.data.title}`;
    case 'not_reboot_safe':
      return `${a.slave} will not come back after a reboot: its agent runs under ${a.data.supervisor} only`;
    case 'master_version_changed':
      return `Master is now at ${shortCommit(a.data.master_commit)} (was ${shortCommit(a.data.previous_commit)})`;
    case 'budget_threshold':
      return `${a.data.request_type} spending reached ${a.data.threshold} % of its budget for ${a.data.month}: ${money(a.data.spent)} of ${money(a.data.budget)}`;
    case 'daily_summary':
      return `Daily summary ${a.data.day}: ${a.data.auto_approved.length} auto-approved, ${money(a.data.spend.total)} spent in ${a.data.spend.month}, ${a.data.pending.length} waiting`;
    case 'rollout_halted':
      return `Rollout of ${shortCommit(a.data.commit)} halted at stage ${a.data.stage}: ${a.data.failed.map((f) => `${f.slave} ${f.rollback_ok ? `rolled back to ${shortCommit(f.rolled_back_to)}` : 'NOT rolled back'}`).join(', ')}`;
    case 'rollout_done':
      return `Rollout of ${shortCommit(a.data.commit)} done: ${a.data.slaves.length} slave(s) updated in ${Math.round(a.data.seconds)}s`;
  }
}
