/**
 * One decision on a human request, shared by the commands (/aprobar …) and the inline buttons.
 * Approving a request that carries an action (update or retry a slave) makes the daemon run it; the
 * daemon completes the request with the outcome, which comes back as alerts.
 */
import type { Context } from 'telegraf';
import type { HumanRequest } from '../../core/requests';
import { REQUEST_ID_RE } from '../../core/requests';
import type { BotDeps } from './commands/deps';
import { actor, say } from './reply';

export type Decision = 'approve' | 'reject' | 'postpone' | 'complete';

const TARGET: Record<Decision, HumanRequest['status']> = { approve: 'APPROVED', reject: 'REJECTED', postpone: 'POSTPONED', complete: 'COMPLETED' };
const PAST: Record<Decision, string> = { approve: 'approved', reject: 'rejected', postpone: 'postponed', complete: 'completed' };

export type DecisionResult = { ok: true; request: HumanRequest; message: string } | { ok: false; message: string };

const deciding = new Set<string>();

export async function decide(ctx: Context, deps: BotDeps, decision: Decision, id: string, note?: string): Promise<DecisionResult> {
  if (!REQUEST_ID_RE.test(id)) return { ok: false, message: `"${id}" is not a request id (they look like req-0001). /solicitudes lists them.` };
  if (deciding.has(id)) return { ok: false, message: `${id} is being decided right now; try again in a moment.` };
  deciding.add(id);
  try {
    let before: HumanRequest;
    try {
      before = deps.services.requests.get(id);
    } catch {
      return { ok: false, message: `No request ${id}. /solicitudes lists the open ones.` };
    }
    if (before.status === TARGET[decision]) return { ok: false, message: `${id} is already ${before.status}.` };
    const by = actor(ctx);
    const fullNote = note && note.trim() ? `${note.trim()} (${by})` : `by ${by}`;
    let request: HumanRequest;
    try {
      request = deps.services.requests[decision](id, fullNote);
    } catch (err) {
      return { ok: false, message: (err as Error).message.replace(/\(list them with `d8 requests list`\)/, '(/solicitudes lists them)') };
    }
    deps.logger.info({ request_id: id, decision, chat_id: ctx.chat?.id ?? null, from_id: ctx.from?.id ?? null }, `Telegram: request ${id} ${PAST[decision]}`);
    let message = `${id} ${PAST[decision]}: ${request.title}`;
    const action = request.action;
    if (decision === 'approve' && action) {
      // The daemon runs approved actions itself (one runner, under its deploy locks) at its next sweep,
      // then completes the request; the outcome reaches every chat through the outbox.
      message += `\n⏳ The master runs the ${action.kind} of ${action.slave} at its next check; the outcome follows here.`;
    }
    return { ok: true, request, message };
  } finally {
    deciding.delete(id);
  }
}

export async function decideAndSay(ctx: Context, deps: BotDeps, decision: Decision, id: string, note?: string): Promise<DecisionResult> {
  const r = await decide(ctx, deps, decision, id, note);
  await say(ctx, deps, r.ok ? `${decision === 'reject' ? '❌' : decision === 'postpone' ? '💤' : '✅'} ${r.message}` : r.message);
  return r;
}
