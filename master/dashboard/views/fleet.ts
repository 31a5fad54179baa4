/** The fleet page: one row per slave. */
import type { SlaveStatus } from '../../control';
import { escapeHtml } from '../http';
import type { Distance } from '../git-distance';
import { answering } from '../states';
import { checkChart, type CheckPoint } from './chart';
import { badge, short, time, type Page } from './layout';
import type { RolloutView } from '../../rollout/view';
import { rolloutPanel } from './rollout';

export interface FleetRow {
  slave: SlaveStatus;
  distance: Distance | null;
  checks: CheckPoint[];
}

export interface FleetModel {
  masterCommit: string | null;
  daemonRunning: boolean;
  rows: FleetRow[];
  openRequests: number;
  pendingAlerts: number;
  /** The stack's latest rollout (issue 14), if it ever had one. */
  rollout: RolloutView | null;
  csrf: string;
}

export function driftText(drift: string, commit: string | null, masterCommit: string | null, d: Distance | null, answering = true): string {
  const c = `<code>${escapeHtml(short(commit))}</code>`;
  if (!answering && commit) return `${c} · last reported (not answering now)`;
  switch (drift) {
    case 'equal': return `${c}`;
    case 'behind': return `${c} · ${d ? `${d.behind} commit${d.behind === 1 ? '' : 's'} ` : ''}behind <code>${escapeHtml(short(masterCommit))}</code>`;
    case 'ahead': return `${c} · ${d ? `${d.ahead} commit${d.ahead === 1 ? '' : 's'} ` : ''}ahead of the master`;
    case 'diverged': return `${c} · diverged${d ? ` (${d.ahead} ahead, ${d.behind} behind)` : ''}`;
    default: return commit ? `${c} · not in the master's history` : '<span class="muted">no commit known</span>';
  }
}

export function fleetPage(m: FleetModel): Page {
  const rows = m.rows.map(({ slave: s, distance, checks }) => `<tr data-slave="${escapeHtml(s.name)}" data-state="${escapeHtml(s.state)}" class="row-${escapeHtml(s.state)}">
<td><a href="/slaves/${encodeURIComponent(s.name)}">${escapeHtml(s.name)}</a><div class="muted small">${escapeHtml(s.endpoint)}</div></td>
<td>${badge(s.state)}${s.failures ? `<div class="muted small">${s.failures} failed check${s.failures === 1 ? '' : 's'}</div>` : ''}</td>
<td>${badge(s.drift)} ${driftText(s.drift, s.commit, m.masterCommit, distance, answering(s.state))}</td>
<td>${escapeHtml(s.strategy ?? '—')}<div class="muted small">auto-update ${escapeHtml(s.auto_update)}</div></td>
<td>${time(s.last_seen)}${s.channel ? `<div class="muted small">channel ${s.channel.connected ? 'up' : 'down'}</div>` : ''}</td>
<td>${checkChart(checks)}</td></tr>`).join('\n');
  const summary = [
    `${m.rows.filter((r) => r.slave.state === 'healthy').length}/${m.rows.length} healthy`,
    m.daemonRunning ? 'daemon running' : 'daemon not running',
    `<a href="/requests">${m.openRequests} open request${m.openRequests === 1 ? '' : 's'}</a>`,
    `${m.pendingAlerts} alert${m.pendingAlerts === 1 ? '' : 's'} waiting for delivery`,
  ].join(' · ');
  return {
    title: 'Fleet', nav: 'fleet', topics: ['slaves', 'checks', 'requests', 'rollouts'],
    body: `<h1>Fleet</h1><p class="summary">${summary}</p>
${rolloutPanel(m.rollout, m.csrf)}
<table class="fleet"><thead><tr><th>slave</th><th>state</th><th>drift</th><th>strategy</th><th>last seen</th><th>latency · failures</th></tr></thead>
<tbody>${rows || '<tr><td colspan="6" class="muted">this stack declares no slaves (d8:slaves)</td></tr>'}</tbody></table>`,
  };
}
