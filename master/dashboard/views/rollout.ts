/** The latest rollout on the fleet page (issue 14): its commit, stage, members, and the pause / resume / abort a person may do. */
import { ROLLOUT_MOVES, ROLLOUT_VERBS } from '../../rollout/control';
import type { RolloutView } from '../../rollout/view';
import { escapeHtml } from '../http';
import { badge, csrfField, short, time } from './layout';

/** A rollout that still decides for its slaves gets the full panel; a finished one a line. */
const OPEN = new Set<RolloutView['status']>(['running', 'paused', 'halted', 'rejected']);

const LABEL: Record<(typeof ROLLOUT_VERBS)[number], string> = { pause: 'Pause', resume: 'Resume', abort: 'Abort' };

function buttons(v: RolloutView, csrf: string): string {
  return ROLLOUT_VERBS.filter((verb) => ROLLOUT_MOVES[verb].from.includes(v.status)).map((verb) => {
    const confirm = verb === 'abort' ? ` data-confirm="${escapeHtml(`Abort rollout ${v.id} of ${short(v.commit)}? ${ROLLOUT_MOVES.abort.help}.`)}"` : '';
    return `<form method="post" action="/rollout/${verb}" class="inline">${csrfField(csrf)}<input type="hidden" name="rollout" value="${v.id}"><button type="submit" data-rollout-action="${verb}" title="${escapeHtml(ROLLOUT_MOVES[verb].help)}"${confirm}>${LABEL[verb]}</button></form>`;
  }).join(' ');
}

export function rolloutPanel(v: RolloutView | null, csrf: string): string {
  if (!v) return '';
  const head = `rollout ${v.id} of <code>${escapeHtml(short(v.commit))}</code>`;
  if (!OPEN.has(v.status)) {
    return `<p class="small muted rollout-line" id="rollout" data-rollout="${v.id}" data-status="${escapeHtml(v.status)}">last ${head}: ${badge(v.status)} · ${v.done.length} updated${v.rolled_back.length ? ` · rolled back ${escapeHtml(v.rolled_back.join(', '))}` : ''} · ${time(v.updated_at)}</p>`;
  }
  const stages = Math.max(v.stages, 1);
  const groups: Array<[string, string[]]> = [['done', v.done], ['updating', v.in_progress], ['pending', v.pending], ['rolled back', v.rolled_back], ['failed', v.failed]];
  const counts = groups.map(([label, xs]) => `<span data-group="${label.replace(' ', '_')}">${label} ${xs.length ? escapeHtml(xs.join(', ')) : '—'}</span>`).join(' · ');
  const rows = v.members.map((m) => `<tr data-member="${escapeHtml(m.slave)}" data-status="${escapeHtml(m.status)}"><td>${escapeHtml(m.slave)}</td><td>${m.stage === 0 ? 'canary' : `batch ${m.stage}`}</td><td>${badge(m.status)}</td><td><code>${escapeHtml(short(m.from_commit))}</code></td><td class="small">${m.error ? escapeHtml(m.error) : ''}</td></tr>`).join('\n');
  const retry = v.status === 'halted' && v.request_id
    ? `<p class="small">halted: <a href="/requests#${encodeURIComponent(v.request_id)}">${escapeHtml(v.request_id)}</a> asks whether to retry it</p>` : '';
  const p = v.policy;
  return `<section id="rollout" data-rollout="${v.id}" data-status="${escapeHtml(v.status)}" data-stage="${v.stage}">
<h2>Rollout ${v.id} of <code>${escapeHtml(short(v.commit))}</code> ${badge(v.status)} <span class="muted small">stage ${Math.min(v.stage + 1, stages)}/${stages} · started ${time(v.created_at)}</span></h2>
<p class="small">${counts}</p>${retry}
<table class="rollout"><thead><tr><th>slave</th><th>stage</th><th>status</th><th>from</th><th>error</th></tr></thead><tbody>${rows}</tbody></table>
<p class="small muted">canary ${p.canary}, batches of ${p.batchSize}, healthy for ${p.healthyForSeconds} s before the next stage, halts after ${p.maxFailures} failure${p.maxFailures === 1 ? '' : 's'}</p>
<div class="rollout-actions">${buttons(v, csrf)}</div></section>`;
}
