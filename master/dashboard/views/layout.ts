/** The page shell and the small pieces every page uses. All text goes through escapeHtml. */
import { escapeHtml } from '../http';

export type Topic = 'slaves' | 'checks' | 'deploys' | 'requests' | 'events' | 'rollouts';

export interface PageChrome {
  stack: string;
  masterCommit: string | null;
  /** The session's CSRF token, put in every form and in a meta tag for the page script. */
  csrf: string;
  /** Set when the dashboard requires a login (non-loopback bind): shows the Log out button. */
  loggedIn: boolean;
}

export interface Page {
  title: string;
  nav: 'fleet' | 'requests' | 'events' | 'none';
  /** SSE topics after which the page's <main> is fetched again. */
  topics: Topic[];
  body: string;
  flash?: { ok: boolean; text: string } | null;
}

export const short = (commit: string | null | undefined): string => (commit ? commit.slice(0, 7) : '—');

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s)) return 'never';
  if (s < 2) return 'just now';
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  if (s < 129600) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export const time = (iso: string | null | undefined): string =>
  iso ? `<time datetime="${escapeHtml(iso)}" title="${escapeHtml(iso)}">${escapeHtml(ago(iso))}</time>` : '<span class="muted">never</span>';

/** A state or status as a coloured badge; the class names the colour in the stylesheet. */
export const badge = (value: string, extra = ''): string =>
  `<span class="badge b-${escapeHtml(value.toLowerCase())}${extra ? ` ${extra}` : ''}">${escapeHtml(value.replace(/_/g, ' '))}</span>`;

export const csrfField = (csrf: string): string => `<input type="hidden" name="_csrf" value="${escapeHtml(csrf)}">`;

/** The <main> content alone: what the page script fetches again on a live update. */
export function mainContent(page: Page): string {
  return page.body;
}

/** The one-shot message after an action, outside <main> so that a live update does not wipe it. */
const flashLine = (flash: Page['flash']): string =>
  flash ? `<p id="flash" class="flash ${flash.ok ? 'ok' : 'err'}" role="status">${escapeHtml(flash.text)}</p>\n` : '';

export function layout(chrome: PageChrome, page: Page): string {
  const nav = (key: Page['nav'], href: string, label: string) =>
    `<a href="${href}"${page.nav === key ? ' aria-current="page"' : ''}>${label}</a>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="d8-csrf" content="${escapeHtml(chrome.csrf)}">
<title>${escapeHtml(page.title)} · D8 Fleet ${escapeHtml(chrome.stack)}</title>
<link rel="stylesheet" href="/assets/app.css"><script src="/assets/app.js" defer></script></head>
<body data-topics="${page.topics.join(' ')}">
<header><strong>D8 Fleet</strong> <span class="muted">stack ${escapeHtml(chrome.stack)} · master ${escapeHtml(short(chrome.masterCommit))}</span>
<nav>${nav('fleet', '/', 'Fleet')}${nav('requests', '/requests', 'Requests')}${nav('events', '/events', 'Events')}<a href="/metrics">Metrics</a></nav>
<span id="live" class="live" title="live updates">○ offline</span>
${chrome.loggedIn ? `<form method="post" action="/logout" class="inline">${csrfField(chrome.csrf)}<button>Log out</button></form>` : ''}
</header>
${flashLine(page.flash)}<main id="main">${mainContent(page)}</main>
</body></html>
`;
}

export function messagePage(title: string, text: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} · D8 Fleet</title><link rel="stylesheet" href="/assets/app.css"></head>
<body><main id="main"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p><p><a href="/">Fleet</a></p></main></body></html>
`;
}

export function loginPage(opts: { error?: string; tokenHint: string }): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · D8 Fleet</title><link rel="stylesheet" href="/assets/app.css"></head>
<body><main id="main" class="login"><h1>D8 Fleet</h1>
<p>This dashboard is not on loopback, so it needs the dashboard token. ${escapeHtml(opts.tokenHint)}</p>
${opts.error ? `<p class="flash err" role="alert">${escapeHtml(opts.error)}</p>` : ''}
<form method="post" action="/login"><label>Dashboard token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Log in</button></form></main></body></html>
`;
}
