/** One slave: its state, its check history as a chart, its deploys with build logs, Retry / Update. */
import type { SlaveStatus } from '../../control';
import type { DeployRow } from '../../store/deploys';
import { escapeHtml } from '../http';
import type { Distance } from '../git-distance';
import { checkChart } from './chart';
import { driftText } from './fleet';
import { answering } from '../states';
import { badge, csrfField, short, time, type Page } from './layout';

export interface CheckRow { at: string; ok: boolean; latency_ms: number | null; commit: string | null; error: string | null }

export interface ActionNote { kind: 'retry' | 'update'; started_at: string; finished_at: string | null; ok: boolean | null; message: string }

export interface SlaveModel {
  slave: SlaveStatus;
  masterCommit: string | null;
  distance: Distance | null;
  checks: CheckRow[];
  deploys: DeployRow[];
  actions: ActionNote[];
  csrf: string;
}

const seconds = (d: DeployRow): string => {
  if (!d.finished_at) return 'running';
  const s = (Date.parse(d.finished_at) - Date.parse(d.started_at)) / 1000;
  return Number.isFinite(s) ? `${s.toFixed(1)} s` : '—';
};

/** Update asks for a ticked box when the policy would have asked a person: a downgrade, or an `approve` slave. */
export function updateNeedsConfirmation(s: SlaveStatus): string | null {
  if (s.drift === 'ahead' || s.drift === 'diverged') return `${s.name} is ${s.drift} of the master: updating replaces its commit with the master's (a downgrade of what it runs)`;
  if (s.auto_update !== 'auto') return `${s.name} has autoUpdate ${s.auto_update}: the master would ask a person before updating it`;
  return null;
}

export function slavePage(m: SlaveModel): Page {
  const s = m.slave;
  const name = encodeURIComponent(s.name);
  const confirmText = updateNeedsConfirmation(s);
  const actions = `<section class="actions"><h2>Actions</h2>
<form method="post" action="/slaves/${name}/retry" class="inline">${csrfField(m.csrf)}<button type="submit" data-action="retry">Retry</button></form>
<form method="post" action="/slaves/${name}/update" class="inline">${csrfField(m.csrf)}${confirmText
    ? `<label class="confirm"><input type="checkbox" name="confirm" value="yes" required> ${escapeHtml(confirmText)}</label> `
    : '<input type="hidden" name="confirm" value="yes">'}<button type="submit" data-action="update">Update to ${escapeHtml(short(m.masterCommit))}</button></form>
<p class="muted small">Retry recovers a down slave and updates one that is behind (never downgrades); Update always redeploys with the master's commit. Both run in the master, like <code>d8 retry</code> / <code>d8 update</code> and the bot's /retry, /update; the outcome shows below and under Events.</p>
${m.actions.length ? `<ul class="notes">${m.actions.map((a) => `<li>${badge(a.ok === null ? 'running' : a.ok ? 'ok' : 'failed')} ${escapeHtml(a.kind)} · ${time(a.started_at)} · ${escapeHtml(a.message)}</li>`).join('')}</ul>` : ''}
</section>`;
  const deploys = m.deploys.map((d) => `<tr><td>${time(d.started_at)}</td><td>${escapeHtml(d.reason)}</td><td>${escapeHtml(d.engine)}</td><td>${escapeHtml(d.strategy ?? '—')}</td>
<td>${badge(d.status)}${d.error ? `<div class="small err">${escapeHtml(d.error.slice(0, 300))}</div>` : ''}</td><td>${seconds(d)}</td><td><code>${escapeHtml(short(d.commit))}</code></td>
<td>${d.build_log_path ? `<a href="/slaves/${name}/deploys/${d.id}/log">build log</a>` : '—'}</td></tr>`).join('\n');
  const checks = m.checks.slice(0, 30).map((c) => `<tr><td>${time(c.at)}</td><td>${badge(c.ok ? 'ok' : 'failed')}</td><td>${c.latency_ms ?? '—'} ms</td><td><code>${escapeHtml(short(c.commit))}</code></td><td class="small">${escapeHtml(c.error ?? '')}</td></tr>`).join('\n');
  return {
    title: s.name, nav: 'none', topics: ['slaves', 'checks', 'deploys'],
    body: `<h1>${escapeHtml(s.name)} ${badge(s.state)}</h1>
<dl class="facts"><dt>endpoint</dt><dd>${escapeHtml(s.endpoint)} (host ${escapeHtml(s.host)})</dd>
<dt>drift</dt><dd>${badge(s.drift)} ${driftText(s.drift, s.commit, m.masterCommit, m.distance, answering(s.state))}</dd>
<dt>strategy</dt><dd>${escapeHtml(s.strategy ?? '—')} · auto-update ${escapeHtml(s.auto_update)}</dd>
<dt>last seen</dt><dd>${time(s.last_seen)} · last check ${time(s.last_check)} · breaker ${escapeHtml(s.breaker)}</dd>
${s.channel ? `<dt>channel</dt><dd>${s.channel.connected ? `up since ${time(s.channel.since)}` : `down${s.channel.last_error ? ` (${escapeHtml(s.channel.last_error)})` : ''}`} · last heartbeat ${time(s.channel.last_heartbeat_at)} · ${s.channel.reconnects} reconnect${s.channel.reconnects === 1 ? '' : 's'}</dd>` : ''}
${s.last_error ? `<dt>last error</dt><dd class="err">${escapeHtml(s.last_error)}</dd>` : ''}</dl>
${actions}
<section><h2>Check history</h2>${checkChart(m.checks, { width: 640, height: 90, label: `${s.name} check latency and failures` })}
<details><summary>last ${Math.min(30, m.checks.length)} checks</summary><table><thead><tr><th>at</th><th>result</th><th>latency</th><th>commit</th><th>error</th></tr></thead><tbody>${checks}</tbody></table></details></section>
<section><h2>Deploys</h2><table><thead><tr><th>when</th><th>why</th><th>engine</th><th>strategy</th><th>result</th><th>time</th><th>commit</th><th></th></tr></thead>
<tbody>${deploys || '<tr><td colspan="8" class="muted">no deploys recorded</td></tr>'}</tbody></table></section>`,
  };
}

export function buildLogPage(slave: string, deployId: number, text: string): Page {
  return {
    title: `${slave} build log ${deployId}`, nav: 'none', topics: [],
    body: `<h1>Build log of deploy ${deployId} · <a href="/slaves/${encodeURIComponent(slave)}">${escapeHtml(slave)}</a></h1>
<p class="muted small">As kept on the master, secrets replaced by ***.</p><pre class="log">${escapeHtml(text)}</pre>`,
  };
}
