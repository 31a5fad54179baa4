/**
 * Plain-text Telegram messages: one per alert kind, the /status and /solicitudes answers, and the
 * inline buttons of a request. No parse_mode is used, so nothing in a slave's error output can break
 * a message. Every text leaves through `finish`, which scrubs secrets and fits Telegram's limit.
 */
import type { Alert } from '../notify/notifier';
import type { HumanRequest } from '../requests/schema';
import { Redactor } from '../../core/redact';

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

const DRIFT_MEANING: Record<string, string> = {
  equal: 'same commit',
  behind: 'the slave is behind the master (an older commit)',
  ahead: 'the slave is AHEAD of the master: a person must decide',
  diverged: 'the slave and the master have diverged: a person must decide',
  unknown: 'the slave\'s commit is unknown to the master\'s repository',
};

/** Keeps the last `max` characters of a multi-line tail, on a line boundary where possible. */
export function tail(text: string, max = 400): string {
  const t = text.trim();
  if (t.length <= max) return t;
  const cut = t.slice(t.length - max);
  const nl = cut.indexOf('\n');
  return '…' + (nl >= 0 && nl < max / 2 ? cut.slice(nl + 1) : cut);
}

/** Scrubs secrets and fits the message into Telegram's limit (the end is kept for error tails). */
export function finish(text: string, redactor: Redactor): string {
  const clean = redactor.text(text).replace(/\n{3,}/g, '\n\n').trim();
  if (clean.length <= MAX_MESSAGE_CHARS) return clean;
  const head = clean.slice(0, 1500);
  const end = clean.slice(clean.length - (MAX_MESSAGE_CHARS - head.length - 40));
  return `${head}\n… (cut) …\n${end}`;
}

interface AttemptLike { strategy?: unknown; attempt?: unknown; ok?: unknown; exit_code?: unknown; stderr_tail?: unknown }

function attemptsOf(data: Record<string, unknown>): AttemptLike[] {
  const a = data.attempts;
  return Array.isArray(a) ? (a.filter((x) => x && typeof x === 'object') as AttemptLike[]) : [];
}

/** The last failed attempt of each strategy, in the order tried. */
function failuresByStrategy(attempts: AttemptLike[]): Array<{ strategy: string; attempts: number; exit: string; tail: string }> {
  const out = new Map<string, { strategy: string; attempts: number; exit: string; tail: string }>();
  for (const a of attempts) {
    const s = String(a.strategy ?? '?');
    const prev = out.get(s);
    out.set(s, {
      strategy: s,
      attempts: (prev?.attempts ?? 0) + 1,
      exit: a.exit_code === undefined ? '?' : String(a.exit_code),
      tail: typeof a.stderr_tail === 'string' && a.stderr_tail.trim() ? a.stderr_tail : prev?.tail ?? '',
    });
  }
  return [...out.values()];
}

function strategyFailure(f: { strategy: string; attempts: number; exit: string; tail: string }): string {
  return `• ${f.strategy} (${f.attempts} attempt${f.attempts === 1 ? '' : 's'}, exit ${f.exit}):\n${tail(f.tail || 'no error output', 300)}`;
}

function where(alert: Alert): string {
  return alert.stack ? ` (stack ${alert.stack})` : '';
}

function lines(...parts: Array<string | false | null | undefined>): string {
  return parts.filter((p): p is string => typeof p === 'string' && p.trim() !== '').join('\n');
}

export interface FormatContext {
  /** The request behind a human_request alert, when the store is at hand (richer message). */
  request?: HumanRequest | null;
}

/** The Telegram message for one alert. */
export function formatAlert(alert: Alert, ctx: FormatContext = {}): OutgoingMessage {
  const d = alert.data as Record<string, unknown> & Alert['data'];
  const slave = alert.slave ?? 'the fleet';
  const reminder = d.resend ? ' (reminder)' : '';
  const logLine = d.build_log_path ? `Build log: ${d.build_log_path}` : null;
  const errorLine = d.error_tail ? `Error:\n${tail(d.error_tail)}` : null;
  switch (alert.kind) {
    case 'version_mismatch': {
      const drift = d.drift ?? 'unknown';
      return {
        text: lines(
          `⚠️ Version mismatch on ${slave}${where(alert)}${reminder}`,
          `Master: ${short(d.master_commit)}   Slave: ${short(d.slave_commit)}`,
          `Drift: ${drift} — ${DRIFT_MEANING[drift] ?? drift}`,
          drift === 'behind' ? 'The master updates it according to the auto-update policy; /update ' + slave + ' forces it now.' : null,
          drift === 'ahead' || drift === 'diverged' ? `Nothing is changed automatically. /update ${slave} redeploys the master's commit.` : null,
        ),
      };
    }
    case 'slave_dead':
      return {
        text: lines(
          `🔴 ${slave} is dead${where(alert)}${reminder}`,
          d.previous_state ? `It was ${d.previous_state}; the health checks keep failing.` : 'The health checks keep failing.',
          errorLine,
          `The master tries to recover it (restart, then redeploy). /retry ${slave} redeploys now.`,
        ),
      };
    case 'slave_recovered':
      return {
        text: lines(
          `🟢 ${slave} recovered${where(alert)}`,
          d.previous_state ? `It was ${d.previous_state}; it is ${d.state ?? 'healthy'} again.` : `It is ${d.state ?? 'healthy'} again.`,
          d.slave_commit ? `Commit: ${short(d.slave_commit)}` : null,
        ),
      };
    case 'update_started':
      return {
        text: lines(
          `🔄 Updating ${slave}${where(alert)}`,
          d.slave_commit || d.master_commit ? `${short(d.slave_commit)} → ${short(d.master_commit)}` : null,
          d.engine ? `Engine: ${d.engine}` : null,
        ),
      };
    case 'update_done':
      return {
        text: lines(
          `✅ ${slave} updated${where(alert)}`,
          `Now at ${short(d.slave_commit ?? d.master_commit)}${d.strategy ? ` (strategy ${d.strategy})` : ''}`,
          logLine,
        ),
      };
    case 'update_failed':
    case 'recovery_failed': {
      const what = alert.kind === 'update_failed' ? 'Update' : 'Recovery';
      const perStrategy = failuresByStrategy(attemptsOf(d)).map(strategyFailure);
      return {
        text: lines(
          `❌ ${what} of ${slave} failed${where(alert)}`,
          d.attempt ? `Attempt ${d.attempt}.` : null,
          perStrategy.length ? `Installer attempts:\n${perStrategy.join('\n')}` : null,
          errorLine,
          logLine,
          d.request_id ? `A request was filed: ${d.request_id}.` : null,
          `/retry ${slave} tries again.`,
        ),
      };
    }
    case 'provisioning_failed': {
      const failures = failuresByStrategy(attemptsOf(d));
      const strategies = d.strategies?.length ? d.strategies : failures.map((f) => f.strategy);
      const perStrategy = failures.map(strategyFailure);
      return {
        text: lines(
          `🚨 Provisioning of ${slave} failed on every strategy${where(alert)}`,
          `Strategies tried: ${strategies.length ? strategies.join(', ') : 'none'}`,
          perStrategy.length ? perStrategy.join('\n') : errorLine,
          logLine,
          d.request_id ? `A request was filed: ${d.request_id}.` : null,
        ),
      };
    }
    case 'human_request': {
      const id = d.request_id ?? '';
      const r = ctx.request;
      const text = r
        ? lines(
          `🙋 New request ${r.id} · ${r.type} · priority ${r.priority}`,
          r.title,
          r.description ? `\n${r.description}` : null,
          r.estimated_cost !== null ? `Estimated cost: ${r.estimated_cost}` : null,
          `From: ${r.created_by}`,
          '',
          `/aprobar ${r.id} · /rechazar ${r.id} [motivo] · /posponer ${r.id} · /completar ${r.id} [nota]`,
        )
        : lines(`🙋 ${alert.title}`, d.request_type || d.priority ? `${d.request_type ?? ''} · priority ${d.priority ?? 'normal'}` : null, alert.text);
      const open = !r || r.status === 'PENDING' || r.status === 'POSTPONED';
      return { text, buttons: id && open ? requestButtons(id) : undefined };
    }
    case 'request_changed': {
      const status = d.request_status ?? '';
      return {
        text: lines(`${STATUS_ICON[status] ?? '📝'} ${alert.title}`, alert.text ? `Note: ${alert.text}` : null),
      };
    }
    case 'master_version_changed':
      return { text: lines(`ℹ️ ${alert.title}`, alert.text) };
    default:
      return { text: lines(alert.title, alert.text) };
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
