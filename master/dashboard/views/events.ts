/** The events timeline: what the outbox carried (state changes, deploys, alerts, decisions). */
import { escapeHtml } from '../http';
import type { EventView } from '../event-feed';
import { badge, time, type Page } from './layout';

export function eventsPage(events: EventView[], filter: { slave?: string; category?: string }): Page {
  const items = events.map((e) => `<li class="event cat-${e.category}" data-kind="${escapeHtml(e.kind)}">
<span class="when">${time(e.at)}</span> ${badge(e.category)} ${e.slave ? `<a href="/slaves/${encodeURIComponent(e.slave)}">${escapeHtml(e.slave)}</a> · ` : ''}<strong>${escapeHtml(e.title)}</strong>
${e.delivered ? '' : ' <span class="badge b-queued" title="not delivered yet">queued</span>'}${e.text ? `<pre class="small">${escapeHtml(e.text)}</pre>` : ''}</li>`).join('\n');
  const f = filter.slave || filter.category ? `<p class="muted">filtered: ${escapeHtml([filter.slave, filter.category].filter(Boolean).join(', '))} · <a href="/events">all</a></p>` : '';
  return {
    title: 'Events', nav: 'events', topics: ['events'],
    body: `<h1>Events</h1>${f}<ol class="timeline">${items || '<li class="muted">no events yet</li>'}</ol>`,
  };
}
