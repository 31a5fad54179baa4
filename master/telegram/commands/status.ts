/** /status: every slave, its state, drift, commit, strategy and supervisor. */
import { Composer, type Context } from 'telegraf';
import { short } from '../format';
import { say } from '../reply';
import type { SlaveView } from '../services';
import type { BotDeps } from './deps';

const ICON: Record<string, string> = { healthy: '🟢', version_mismatch: '⚠️', pending: '🟡', dead: '🔴', unknown: '⚪', untrusted: '🚨' };

export function slaveLine(s: SlaveView): string {
  const state = s.state === 'version_mismatch' ? `version mismatch (${s.drift})` : s.state;
  const parts = [`${ICON[s.state] ?? '•'} ${s.name}: ${state}`, `commit ${short(s.commit)}`];
  if (s.strategy) parts.push(s.strategy);
  if (s.supervisor) parts.push(s.reboot_safe === false ? `${s.supervisor} ⚠️ not reboot-safe` : s.supervisor);
  let line = parts.join(' · ');
  if (s.state !== 'healthy' && s.last_seen) line += `\n   last seen ${s.last_seen}`;
  if ((s.state === 'dead' || s.state === 'pending' || s.state === 'untrusted') && s.last_error) line += `\n   ${s.last_error.split('\n')[0].slice(0, 160)}`;
  return line;
}

export function statusCommands(deps: BotDeps): Composer<Context> {
  const c = new Composer<Context>();
  c.command('status', async (ctx) => {
    let text: string;
    try {
      const fleet = await deps.services.status();
      const open = deps.services.requests.list({ open: true }).length;
      text = [
        `📋 Fleet ${fleet.stack} · master ${short(fleet.master_commit)}`,
        ...(fleet.slaves.length ? fleet.slaves.map(slaveLine) : ['No slaves in the stack config (d8:slaves).']),
        open ? `\n${open} open request${open === 1 ? '' : 's'}: /solicitudes` : '',
      ].filter(Boolean).join('\n');
    } catch (err) {
      text = `Could not read the fleet status: ${(err as Error).message}`;
    }
    await say(ctx, deps, text);
  });
  return c;
}
