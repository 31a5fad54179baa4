/** Human requests: pending, postponed, decided; the decisions go through the same RequestService as the CLI and the bot. */
import type { HumanRequest } from '../../../core/requests';
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
<div class="small muted">by ${escapeHtml(r.created_by)} · created ${time(r.created_at)} · updated ${time(r.updated_at)}${r.estimated_cost !== null ? ` · estimated cost ${escapeHtml(r.estimated_cost)}` : ''}</div>
${r.notes ? `<pre class="notes small">${escapeHtml(r.notes)}</pre>` : ''}${forms ? `<div class="decisions">${forms}</div>` : ''}</article>`;
}

export function requestsPage(all: HumanRequest[], csrf: string): Page {
  const group = (title: string, list: HumanRequest[], empty: string) =>
    `<section><h2>${title} <span class="muted">(${list.length})</span></h2>${list.length ? list.map((r) => card(r, csrf)).join('\n') : `<p class="muted">${empty}</p>`}</section>`;
  const decided = all.filter((r) => !['PENDING', 'POSTPONED'].includes(r.status)).reverse();
  return {
    title: 'Requests', nav: 'requests', topics: ['requests'],
    body: `<h1>Requests</h1>
${group('Pending', all.filter((r) => r.status === 'PENDING'), 'nothing waits for you')}
${group('Postponed', all.filter((r) => r.status === 'POSTPONED'), 'none')}
${group('Decided', decided.slice(0, 50), 'none yet')}`,
  };
}
