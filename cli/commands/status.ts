import type { Command } from 'commander';
import { shortCommit } from '../../core/version-info';
import { withFleet, DEFAULT_STACK } from '../fleet-context';
import { FleetControl, type FleetStatus, type SlaveStatus } from '../../master/control';
import { formatRolloutLine, rolloutView } from '../../master/rollout/view';

const ICON: Record<string, string> = { healthy: '✅', version_mismatch: '⚠️ ', pending: '⏳', dead: '🔴', unknown: '❔', untrusted: '🚨' };

function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  if (s < 129600) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function formatStatus(st: FleetStatus): string {
  const d = st.master.daemon;
  const lines = [
    `stack ${st.stack} · master ${shortCommit(st.master.commit)}${st.master.branch ? ` (${st.master.branch})` : ''} · ` +
      (d.running ? `daemon running (pid ${d.pid}, engine ${d.engine ?? '?'})` : `no daemon running${d.heartbeat_at ? ` (last heartbeat ${ago(d.heartbeat_at)})` : ''}`),
  ];
  const w = Math.max(4, ...st.slaves.map((s) => s.name.length));
  for (const s of st.slaves) lines.push(slaveLine(s, w));
  if (st.slaves.length === 0) lines.push('(no slaves in d8:slaves)');
  const extras = [st.open_requests ? `${st.open_requests} open human request(s): d8 requests list` : '', st.pending_alerts ? `${st.pending_alerts} alert(s) waiting for delivery` : ''].filter(Boolean);
  if (extras.length) lines.push(extras.join(' · '));
  return lines.join('\n') + '\n';
}

function supervisorLabel(s: SlaveStatus): string {
  if (!s.supervisor) return '-';
  return s.reboot_safe === false ? `${s.supervisor} (not reboot-safe)` : s.supervisor;
}

/** The daemon's channel to the agent: up since when (with reconnects), or down and why. */
function channelLabel(s: SlaveStatus): string {
  const c = s.channel;
  if (!c) return '';
  if (c.connected) return `channel up ${ago(c.since).replace(' ago', '')}${c.reconnects ? ` (${c.reconnects} reconnects)` : ''}`;
  return `channel down${c.last_error ? ` (${c.last_error})` : ''}`;
}

function slaveLine(s: SlaveStatus, w: number): string {
  const marker = s.state === 'version_mismatch' ? ` [≠ ${shortCommit(s.commit)} ${s.drift}]` : '';
  const parts = [
    `${ICON[s.state] ?? '  '} ${s.name.padEnd(w)}`,
    `${s.state}${marker}`.padEnd(34),
    (s.state === 'version_mismatch' ? '' : shortCommit(s.commit)).padEnd(7),
    (s.strategy ?? '-').padEnd(6),
    supervisorLabel(s).padEnd(10),
    `last seen ${ago(s.last_seen)}`.padEnd(20),
    s.endpoint,
  ];
  let line = parts.join('  ');
  const ch = channelLabel(s);
  if (ch) line += `  ${ch}`;
  if (s.last_error && s.state !== 'healthy') line += `\n   ${' '.repeat(w)}last error: ${s.last_error}`;
  return line;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description("show every slave's state, commit, strategy, supervisor (and whether it survives a reboot) and last contact (reads the master's store; works while it runs)")
    .option('-s, --stack <stack>', 'stack', DEFAULT_STACK)
    .option('--repo <dir>', 'repository with the stack files (default: this checkout)')
    .option('--json', 'print { master: { commit }, slaves: [{ name, state, drift, commit, strategy, supervisor, reboot_safe, last_seen, last_error, channel }] }')
    .action(async (opts: { stack: string; repo?: string; json?: boolean }) => {
      await withFleet(opts, (ctx) => {
        const st = new FleetControl({ config: ctx.config, store: ctx.store, repoDir: ctx.repoDir }).status();
        // issue 14: the rollout of the master's commit, while it is not done.
        const r = st.master.commit ? ctx.store.rollouts.forCommit(ctx.config.stack, st.master.commit) : null;
        const rollout = r && r.status !== 'done' ? rolloutView(r) : null;
        process.stdout.write(opts.json ? JSON.stringify({ ...st, rollout }, null, 2) + '\n' : formatStatus(st) + (rollout ? formatRolloutLine(rollout) + '\n' : ''));
      });
    });
}
