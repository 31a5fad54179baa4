/**
 * Plain-text Telegram messages: one per alert kind, the /status and /solicitudes answers, and the
 * inline buttons of a request. No parse_mode is used, so nothing in a slave's error output can break
 * a message. Every text leaves through `finish`, which scrubs secrets and fits Telegram's limit.
 */
import type { Alert, RecoveryStep } from '../../core/alerts';
import type { Drift } from '../../core/fleet-state';
import type { InstallAttempt } from '../../core/install-result';
import type { AutoUpdatePolicy } from '../../core/stack-config';
import type { HumanRequest } from '../../core/requests';
import { Redactor } from '../../core/redact';
import { tail } from '../../core/text';
import { fixFor } from '../notify/fix-hints';
import { money } from '../notify/headline';
import { spendText } from '../requests/spend-report';

/** Telegram refuses texts longer than this. */
export const MAX_MESSAGE_CHARS = 4096;

export interface InlineButton { text: string; callback_data: string }
export interface OutgoingMessage { text: string; buttons?: InlineButton[][] }

export type RequestVerb = 'approve' | 'reject';
const CALLBACK_RE = /^req:(approve|reject):(req-\d{4,})$/;

export function requestCallbackData(verb: RequestVerb, id: string): string {
  return `req:${verb}:${id}`;
}

export function parseRequestCallback(data: string): { verb: RequestVerb; id: string } | null {
  const m = CALLBACK_RE.exec(data);
  return m ? { verb: m[1] as RequestVerb, id: m[2] } : null;
}

export function requestButtons(id: string): InlineButton[][] {
  return [[
    { text: '✅ Approve', callback_data: requestCallbackData('approve', id) },
    { text: '❌ Reject', callback_data: requestCallbackData('reject', id) },
  ]];
}

export const short = (commit: string | null | undefined): string => (commit ? commit.slice(0, 7) : 'unknown');

const DRIFT_MEANING: Record<Drift, string> = {
  equal: 'same commit',
  behind: 'the slave is behind the master (an older commit)',
  ahead: 'the slave is AHEAD of the master: a person must decide',
  diverged: 'the slave and the master have diverged: a person must decide',
  unknown: 'the slave\'s commit is unknown to the master\'s repository',
};

export { tail };

/** Scrubs secrets and fits the message into Telegram's limit (the end is kept for error tails). */
export function finish(text: string, redactor: Redactor): string {
  const clean = redactor.text(text).replace(/\n{3,}/g, '\n\n').trim();
  if (clean.length <= MAX_MESSAGE_CHARS) return clean;
  const head = clean.slice(0, 1500);
  const end = clean.slice(clean.length - (MAX_MESSAGE_CHARS - head.length - 40));
  return `${head}\n… (cut) …\n${end}`;
}

/** The last failed attempt of each strategy, in the order tried. */
function failuresByStrategy(attempts: InstallAttempt[]): Array<{ strategy: string; attempts: number; exit: string; tail: string }> {
  const out = new Map<string, { strategy: string; attempts: number; exit: string; tail: string }>();
  for (const a of attempts) {
    const prev = out.get(a.strategy);
    out.set(a.strategy, {
      strategy: a.strategy,
      attempts: (prev?.attempts ?? 0) + 1,
      exit: String(a.exit_code),
      tail: a.stderr_tail.trim() ? a.stderr_tail : prev?.tail ?? '',
    });
  }
  return [...out.values()];
}

function strategyFailure(f: { strategy: string; attempts: number; exit: string; tail: string }): string {
  return `• ${f.strategy} (${f.attempts} attempt${f.attempts === 1 ? '' : 's'}, exit ${f.exit}):\n${tail(f.tail || 'no error output', 300)}`;
}

function stepLine(s: RecoveryStep): string {
  return `• ${s.action}: ${s.ok ? 'ok' : `failed${s.error_kind ? ` [${s.error_kind}]` : ''}${s.error ? ` — ${tail(s.error, 200)}` : ''}`}`;
}

function where(alert: Alert): string {
  return alert.stack ? ` (stack ${alert.stack})` : '';
}

function lines(...parts: Array<string | false | null | undefined>): string {
  return parts.filter((p): p is string => typeof p === 'string' && p.trim() !== '').join('\n');
}

const POLICY_LINE: Record<AutoUpdatePolicy, (slave: string) => string> = {
  auto: (slave) => `Auto-update is on: the master updates it now (/update ${slave} forces it).`,
  approve: (slave) => `Auto-update needs approval: an update request was filed (/update ${slave} forces it now).`,
  off: (slave) => `Auto-update is off for it: /update ${slave} updates it.`,
};

export interface FormatContext {
  /** The request behind a human_request alert, when the store is at hand (current status). */
  request?: HumanRequest | null;
}

/** The Telegram message for one alert. */
export function formatAlert(alert: Alert, ctx: FormatContext = {}): OutgoingMessage {
  switch (alert.kind) {
    case 'version_mismatch': {
      const d = alert.data;
      const slave = alert.slave;
      return {
        text: lines(
          `⚠️ Version mismatch on ${slave}${where(alert)}${d.resend ? ' (reminder)' : ''}`,
          `Master: ${short(d.master_commit)}   Slave: ${short(d.slave_commit)}${d.branch ? ` (${d.branch})` : ''}`,
          `Drift: ${d.drift} — ${DRIFT_MEANING[d.drift]}`,
          d.drift === 'behind' ? (d.auto_update ? POLICY_LINE[d.auto_update](slave) : `The master updates it according to the auto-update policy; /update ${slave} forces it now.`) : null,
          d.drift === 'ahead' || d.drift === 'diverged' ? `Nothing is changed automatically; a request was filed. /update ${slave} redeploys the master's commit.` : null,
          d.drift === 'unknown' ? `Fetch the slave's commit into the master's repository, or /update ${slave} to redeploy the master's commit.` : null,
        ),
      };
    }
    case 'slave_dead': {
      const d = alert.data;
      const slave = alert.slave;
      return {
        text: lines(
          `🔴 ${slave} is dead${where(alert)}${d.resend ? ' (reminder)' : ''}`,
          d.previous_state ? `It was ${d.previous_state}; the health checks keep failing${d.failures ? ` (${d.failures} in a row)` : ''}.` : 'The health checks keep failing.',
          d.endpoint ? `Agent: ${d.endpoint} · last seen: ${d.last_seen ?? 'never'}` : null,
          d.error_tail ? `Error:\n${tail(d.error_tail)}` : null,
          `The master tries to recover it (restart, then redeploy). /retry ${slave} redeploys now.`,
        ),
      };
    }
    case 'slave_recovered': {
      const d = alert.data;
      return {
        text: lines(
          `🟢 ${alert.slave} recovered${where(alert)}`,
          d.previous_state ? `It was ${d.previous_state}; it is ${d.state} again.` : `It is ${d.state} again.`,
          d.slave_commit ? `Commit: ${short(d.slave_commit)}` : null,
        ),
      };
    }
    case 'update_done': {
      const d = alert.data;
      return {
        text: lines(
          `✅ ${alert.slave} updated${where(alert)}`,
          `Now at ${short(d.slave_commit ?? d.master_commit)}${d.previous_commit ? ` (was ${short(d.previous_commit)})` : ''}${d.strategy ? ` (strategy ${d.strategy})` : ''}`,
          d.build_log_path ? `Build log: ${d.build_log_path}` : null,
        ),
      };
    }
    case 'update_failed':
    case 'recovery_failed':
    case 'provisioning_failed': {
      const d = alert.data;
      const slave = alert.slave;
      const perStrategy = failuresByStrategy(d.attempts).map(strategyFailure);
      const steps = alert.kind === 'update_failed' ? [] : alert.data.steps.map(stepLine);
      const head = alert.kind === 'update_failed' ? `❌ Update of ${slave} failed${where(alert)}`
        : alert.kind === 'recovery_failed' ? `❌ Recovery of ${slave} failed${where(alert)}`
          : `🚨 Provisioning of ${slave} failed on every strategy${where(alert)}`;
      const strategies = alert.kind === 'update_failed' ? [] : alert.data.strategies.length ? alert.data.strategies : failuresByStrategy(d.attempts).map((f) => f.strategy);
      return {
        text: lines(
          head,
          d.attempt ? `Attempt ${d.attempt}.` : null,
          alert.kind === 'provisioning_failed' ? `Strategies tried: ${strategies.length ? strategies.join(', ') : 'none'}` : null,
          steps.length ? `Steps:\n${steps.join('\n')}` : null,
          perStrategy.length ? `${alert.kind === 'provisioning_failed' ? '' : 'Installer attempts:\n'}${perStrategy.join('\n')}` : null,
          d.error_tail && !(alert.kind === 'provisioning_failed' && perStrategy.length) ? `Error:\n${tail(d.error_tail)}` : null,
          fixFor(d.error_kind, slave),
          d.build_log_path ? `Build log: ${d.build_log_path}` : null,
          alert.kind === 'update_failed' && alert.data.next_attempt_at ? `Next automatic attempt not before ${alert.data.next_attempt_at}.` : null,
          d.request_id ? `A request was filed: ${d.request_id}.` : null,
          alert.kind === 'provisioning_failed' ? null : `/retry ${slave} tries again.`,
        ),
      };
    }
    case 'human_request': {
      const d = alert.data;
      const r = ctx.request;
      const text = lines(
        `🙋 New request ${d.request_id} · ${d.request_type} · priority ${d.priority}`,
        d.title,
        d.description ? `\n${d.description}` : null,
        d.estimated_cost !== null ? `Estimated cost: ${d.estimated_cost}` : null,
        d.created_by ? `From: ${d.created_by}` : null,
        d.auto_note ? `Not auto-approved: ${d.auto_note}` : null,
        '',
        `/aprobar ${d.request_id} · /rechazar ${d.request_id} [motivo] · /posponer ${d.request_id} · /completar ${d.request_id} [nota]`,
      );
      const open = !r || r.status === 'PENDING' || r.status === 'POSTPONED';
      return { text, buttons: open ? requestButtons(d.request_id) : undefined };
    }
    case 'request_changed': {
      const d = alert.data;
      return {
        text: lines(`${STATUS_ICON[d.request_status] ?? '📝'} Request ${d.request_id} is now ${d.request_status}: ${d.title}`, d.note ? `Note: ${d.note}` : null),
      };
    }
    case 'agent_impersonation': {
      const d = alert.data;
      return {
        text: lines(
          `🚨 ${alert.slave}: possible impersonation${where(alert)}`,
          `${d.endpoint} presented a certificate other than the one its install reported over SSH.`,
          `Pinned: ${d.expected}`,
          `Presented: ${d.presented ?? '(none)'}`,
          'Nothing is sent to it (no command, token or restart) and it is not treated as dead.',
          `If the agent's key pair was replaced on purpose (its TLS directory removed), redeploy: d8 up --slave ${alert.slave} --force (or /retry ${alert.slave}) records the new certificate over SSH. Otherwise find what answers on that address.`,
        ),
      };
    }
    case 'not_reboot_safe': {
      const d = alert.data;
      return {
        text: lines(
          `⚠️ ${alert.slave} will not come back after a reboot${where(alert)}`,
          `Its agent runs under ${d.supervisor} only${d.strategy ? ` (strategy ${d.strategy})` : ''}${d.endpoint ? ` on ${d.endpoint}` : ''}: the host allowed no systemd unit, no user unit with linger and no cron @reboot entry.`,
          `For reboot safety give the SSH user passwordless sudo, install polkit (so logind allows linger) or install cron on the host, then /retry ${alert.slave} redeploys.`,
          'This is said once; again only if the slave becomes reboot-safe and then loses it.',
        ),
      };
    }
    case 'master_version_changed':
      return {
        text: lines(`ℹ️ Master is now at ${short(alert.data.master_commit)} (was ${short(alert.data.previous_commit)})${where(alert)}`,
          'Slaves are compared with the new commit from this sweep on.'),
      };
    case 'budget_threshold': {
      const d = alert.data;
      return {
        text: lines(
          `${d.threshold >= 100 ? '🚨' : '💰'} ${d.request_type} budget ${d.threshold >= 100 ? 'used up' : `at ${d.threshold} %`} for ${d.month}${where(alert)}`,
          `Approved so far: ${money(d.spent)} of ${money(d.budget)}.`,
          d.threshold >= 100 ? `No more ${d.request_type} requests are auto-approved this month; each one asks you.` : null,
          '/gastos shows every type.',
        ),
      };
    }
    case 'daily_summary': {
      const d = alert.data;
      return {
        text: lines(
          `📅 Daily summary ${d.day}${where(alert)}`,
          d.auto_approved.length ? `Auto-approved since ${d.since.slice(0, 16).replace('T', ' ')}:\n${d.auto_approved.map((r) => `• ${r.request_id} ${r.title}${r.estimated_cost !== null ? ` (${money(r.estimated_cost)})` : ''} — ${r.rule}`).join('\n')}` : 'Nothing was auto-approved.',
          spendText(d.spend),
          d.pending.length ? `Waiting for you (${d.pending.length}):\n${d.pending.slice(0, 20).map((r) => `• ${r.request_id} [${r.request_status}] ${r.title}`).join('\n')}${d.pending.length > 20 ? '\n…' : ''}\n/solicitudes` : 'Nothing waits for you.',
        ),
      };
    }
    case 'rollout_halted': {
      const d = alert.data;
      return {
        text: lines(
          `🛑 Rollout of ${short(d.commit)} halted at stage ${d.stage}${where(alert)}`,
          ...d.failed.map((f) => `• ${f.slave}: ${tail(f.error, 300)}\n  ${f.rollback_ok ? `rolled back to ${short(f.rolled_back_to)}, healthy again` : `NOT rolled back${f.rolled_back_to ? ` (to ${short(f.rolled_back_to)})` : ' (no kept good release)'}`}`),
          d.untouched.length ? `Left on their release: ${d.untouched.join(', ')}` : null,
          d.request_id ? `Retry the rollout? /aprobar ${d.request_id} · /rechazar ${d.request_id}` : null,
        ),
      };
    }
    case 'rollout_done':
      return { text: `✅ Rollout of ${short(alert.data.commit)} done${where(alert)}: ${alert.data.slaves.join(', ')} (${Math.round(alert.data.seconds)}s)` };
  }
}

const STATUS_ICON: Record<string, string> = { PENDING: '⏳', POSTPONED: '💤', APPROVED: '✅', REJECTED: '❌', COMPLETED: '🏁' };

/** One request in a list: id, status, priority, title. */
export function requestLine(r: HumanRequest): string {
  return `${STATUS_ICON[r.status] ?? ''} ${r.id} [${r.status}] ${r.priority === 'high' || r.priority === 'urgent' ? `(${r.priority}) ` : ''}${r.title}`.trim();
}

/** The request as shown after a decision (the buttons are gone). */
export function requestDecided(r: HumanRequest): string {
  return lines(
    `${STATUS_ICON[r.status] ?? ''} ${r.id} · ${r.type} · ${r.status}`,
    r.title,
    r.notes ? `Notes:\n${tail(r.notes, 800)}` : null,
  );
}
