/** Human requests: pending, postponed, decided; the decisions go through the same RequestService as the CLI and the bot. */
import type { HumanRequest, RequestPage } from '../../../core/requests';
import type { SpendReport } from '../../../core/approval';
import { money } from '../../notify/headline';
import { TRANSITIONS } from '../../../core/requests';
import { escapeHtml } from '../http';
import { badge, csrfField, short, time, type Page } from './layout';

const DECISIONS = [
  { name: 'approve', to: 'APPROVED', label: 'Approve', field: null },
  { name: 'reject', to: 'REJECTED', label: 'Reject', field: 'reason' },
  { name: 'postpone', to: 'POSTPONED', label: 'Postpone', field: null },
  { name: 'complete', to: 'COMPLETED', label: 'Complete', field: 'note' },
] as const;

function card(r: HumanRequest, csrf: string): string {
  const id = escapeHtml(r.id);
  const forms = DECISIONS.filter((d) => TRANSITIONS[r.status].includes(d.to)).map((d) => `<form method="post" action="/requests/${id}/${d.name}" class="inline decide">${csrfField(csrf)}${
    d.field ? `<input name="${d.field}" placeholder="${d.field}${d.name === 'reject' ? ' (optional)' : ''}" maxlength="500" aria-label="${d.field} for ${id}"> ` : ''}<button type="submit" data-decision="${d.name}" data-request="${id}">${d.label}</button></form>`).join(' ');
  const action = r.action ? `<div class="small">on approval: <strong>${escapeHtml(r.action.kind)} ${escapeHtml(r.action.slave)}</strong>${r.action.target_commit ? ` to <code>${escapeHtml(short(r.action.target_commit))}</code>` : ''}</div>` : '';
  return `<article class="request" id="${id}" data-status="${escapeHtml(r.status)}">
<h3>${id} ${badge(r.status)} ${badge(r.priority, 'prio')} <span class="muted small">${escapeHtml(r.type)}</span></h3>
<p class="title">${escapeHtml(r.title)}</p>${r.description ? `<pre class="desc">${escapeHtml(r.description)}</pre>` : ''}${action}
${r.auto_rule ? `<div class="small auto-rule">auto-approved by ${escapeHtml(r.auto_rule)}</div>` : ''}
<div class="small muted">by ${escapeHtml(r.created_by)} · created ${time(r.created_at)} · updated ${time(r.updated_at)}${r.estimated_cost !== null ? ` · estimated cost ${escapeHtml(r.estimated_cost)}` : ''}</div>
${r.notes ? `<pre class="notes small">${escapeHtml(r.notes)}</pre>` : ''}${forms ? `<div class="decisions">${forms}</div>` : ''}</article>`;
}

/** This month's approved costs per type against the budgets (d8:budgets). */
function spendPanel(s: SpendReport): string {
  const rows = s.lines.map((l) => {
    const pct = l.percent === null ? '' : `${Math.round(l.percent)} %`;
    const level = l.percent === null ? '' : l.percent >= 100 ? ' class="over"' : l.percent >= 80 ? ' class="near"' : '';
    return `<tr data-type="${escapeHtml(l.type)}"${level}><td>${escapeHtml(l.type)}</td><td>${escapeHtml(money(l.spent))}</td><td>${l.budget === null ? '<span class="muted">none</span>' : escapeHtml(money(l.budget))}</td><td>${escapeHtml(pct)}</td><td>${l.approved}</td></tr>`;
  }).join('');
  return `<section id="spend"><h2>Spend in ${escapeHtml(s.month)} <span class="muted">(approved costs, total ${escapeHtml(money(s.total))})</span></h2>${s.lines.length
    ? `<table><thead><tr><th>type</th><th>spent</th><th>monthly budget</th><th>used</th><th>approved</th></tr></thead><tbody>${rows}</tbody></table>`
    : '<p class="muted">nothing approved with a cost this month, and no budgets set (d8:budgets)</p>'}</section>`;
}

export interface RequestsView {
  /** Every request waiting for a person, newest first. */
  open: HumanRequest[];
  /** One page of decided requests, newest first. */
  decided: RequestPage;
  /** The `before` this page was asked for (null: the newest page). */
  before: string | null;
}

export function requestsPage(v: RequestsView, csrf: string, spend: SpendReport): Page {
  const cards = (list: HumanRequest[], empty: string) => list.length ? list.map((r) => card(r, csrf)).join('\n') : `<p class="muted">${empty}</p>`;
  const group = (title: string, list: HumanRequest[], empty: string) =>
    `<section><h2>${title} <span class="muted">(${list.length})</span></h2>${cards(list, empty)}</section>`;
  const older = v.decided.next_before ? `<a href="/requests?before=${encodeURIComponent(v.decided.next_before)}" rel="next" id="older">older decided requests →</a>` : '';
  const newest = v.before ? '<a href="/requests" id="newest">← newest</a>' : '';
  const paging = older || newest ? `<nav class="paging small">${[newest, older].filter(Boolean).join(' · ')}</nav>` : '';
  return {
    title: 'Requests', nav: 'requests', topics: ['requests'],
    body: `<h1>Requests</h1>
${spendPanel(spend)}
${group('Pending', v.open.filter((r) => r.status === 'PENDING'), 'nothing waits for you')}
${group('Postponed', v.open.filter((r) => r.status === 'POSTPONED'), 'none')}
<section id="decided"><h2>Decided <span class="muted">(newest first${v.before ? `, before ${escapeHtml(v.before)}` : ''})</span></h2>${cards(v.decided.requests, 'none yet')}${paging}</section>`,
  };
}
