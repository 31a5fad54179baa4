/** /solicitudes, /aprobar <id>, /rechazar <id> [motivo], /posponer <id>, /completar <id> [nota]. */
import { Composer, type Context } from 'telegraf';
import { decideAndSay, type Decision } from '../decide';
import { requestButtons, requestLine } from '../format';
import { commandArgs, say } from '../reply';
import type { BotDeps } from './deps';

/** Approved requests listed by /solicitudes (auto-approved ones stay APPROVED: there can be thousands). */
const APPROVED_SHOWN = 20;

const COMMANDS: Array<{ command: string; decision: Decision; noteName?: string }> = [
  { command: 'aprobar', decision: 'approve' },
  { command: 'rechazar', decision: 'reject', noteName: 'motivo' },
  { command: 'posponer', decision: 'postpone' },
  { command: 'completar', decision: 'complete', noteName: 'nota' },
];

export function requestCommands(deps: BotDeps): Composer<Context> {
  const c = new Composer<Context>();

  c.command('solicitudes', async (ctx) => {
    const open = deps.services.requests.list({ open: true });
    const approved = deps.services.requests.list({ status: 'APPROVED', limit: APPROVED_SHOWN + 1 });
    if (open.length === 0 && approved.length === 0) {
      await say(ctx, deps, 'No open requests. 🎉');
      return;
    }
    const lines = ['Open requests:', ...open.map(requestLine)];
    if (approved.length) {
      lines.push('', 'Approved, waiting to be completed (/completar <id> [nota]), newest first:', ...approved.slice(0, APPROVED_SHOWN).map(requestLine));
      if (approved.length > APPROVED_SHOWN) lines.push(`… and older ones (d8 requests list --status APPROVED, or the dashboard)`);
    }
    await say(ctx, deps, lines.join('\n'));
    // Each open request again with its buttons (at most 10, the newest), so it can be decided with a tap.
    for (const r of open.slice(0, 10)) await say(ctx, deps, `${r.id} · ${r.type} · priority ${r.priority}\n${r.title}`, requestButtons(r.id));
  });

  for (const { command, decision, noteName } of COMMANDS) {
    c.command(command, async (ctx) => {
      const args = commandArgs(ctx);
      const [id, ...rest] = args.split(/\s+/);
      if (!id) {
        await say(ctx, deps, `Usage: /${command} <id>${noteName ? ` [${noteName}]` : ''}, e.g. /${command} req-0001. /solicitudes lists them.`);
        return;
      }
      await decideAndSay(ctx, deps, decision, id, noteName ? rest.join(' ') : undefined);
    });
  }
  return c;
}
