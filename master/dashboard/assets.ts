/**
 * The dashboard's only stylesheet and script, served from /assets (the CSP allows nothing inline).
 * The script keeps pages live: it listens to /live (server-sent events) and, when a topic the page
 * shows changes, fetches the page's <main> again; it also asks before a state-changing click
 * that the server marks with data-confirm.
 */
export const APP_CSS = `
:root{--ok:#1a7f37;--warn:#b35900;--bad:#c62828;--muted:#6a737d;--bg:#fafbfc;--line:#e1e4e8}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:var(--bg);color:#1f2328}
header{display:flex;gap:1rem;align-items:center;flex-wrap:wrap;padding:.6rem 1rem;background:#24292f;color:#fff}
header a{color:#d0d7de;text-decoration:none;margin-right:.8rem}header a[aria-current]{color:#fff;font-weight:600;border-bottom:2px solid #fff}
header .muted{color:#adbac7}nav{flex:1}.live{font-size:12px;color:#adbac7}.live.on{color:#7ee787}
main{padding:1rem 1.2rem;max-width:1200px}h1{font-size:1.4rem;margin:.2rem 0 .8rem}h2{font-size:1.1rem;margin:1.2rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}th,td{padding:.45rem .6rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;font-size:12px;color:var(--muted);text-transform:uppercase}
tr.row-dead td:first-child{border-left:4px solid var(--bad)}tr.row-pending td:first-child{border-left:4px solid var(--warn)}
tr.row-healthy td:first-child{border-left:4px solid var(--ok)}tr.row-version_mismatch td:first-child{border-left:4px solid #0969da}
tr.row-dead{background:#fff0f0}
.badge{display:inline-block;padding:0 .45rem;border-radius:1rem;font-size:12px;background:#eaeef2;color:#24292f;white-space:nowrap}
.b-healthy,.b-ok,.b-equal,.b-approved,.b-completed{background:#dafbe1;color:var(--ok)}
.b-dead,.b-failed,.b-rejected,.b-diverged,.b-interrupted,.b-urgent{background:#ffebe9;color:var(--bad)}
.b-pending,.b-behind,.b-postponed,.b-running,.b-queued,.b-high{background:#fff1e5;color:var(--warn)}
.b-version_mismatch,.b-ahead,.b-decision{background:#ddf4ff;color:#0969da}
.b-passed,.b-done{background:#dafbe1;color:var(--ok)}.b-halted,.b-rolled_back,.b-rollback_failed{background:#ffebe9;color:var(--bad)}
.b-paused,.b-gate,.b-updating{background:#fff1e5;color:var(--warn)}#rollout{background:#fff;border:1px solid var(--line);border-radius:8px;padding:.4rem .9rem .7rem;margin:.6rem 0 1rem}
.b-state{background:#fff8c5;color:#7d4e00}.b-deploy{background:#fbefff;color:#8250df}.b-master{background:#eaeef2;color:#24292f}
.muted{color:var(--muted)}.small{font-size:12px}.err{color:var(--bad)}code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.chart .lat{fill:none;stroke:#0969da;stroke-width:1.5}.chart .fail{stroke:var(--bad);stroke-width:2}.chart text{font-size:11px;fill:var(--muted)}
.flash{padding:.5rem .8rem;border-radius:6px}.flash.ok{background:#dafbe1}.flash.err{background:#ffebe9}
form.inline{display:inline}button{font:inherit;padding:.25rem .7rem;border:1px solid #d0d7de;border-radius:6px;background:#f6f8fa;cursor:pointer}
button:hover{background:#eef1f4}input{font:inherit;padding:.2rem .4rem;border:1px solid #d0d7de;border-radius:6px}
.request{background:#fff;border:1px solid var(--line);border-radius:8px;padding:.6rem .9rem;margin:.5rem 0}.request h3{margin:0;font-size:1rem}
.request .title{margin:.3rem 0;font-weight:500}pre{white-space:pre-wrap;word-break:break-word;margin:.3rem 0}pre.log{background:#fff;border:1px solid var(--line);padding:.8rem;font-size:12px}
.decisions{margin-top:.4rem}dl.facts{display:grid;grid-template-columns:8rem 1fr;gap:.2rem 1rem}dt{color:var(--muted)}dd{margin:0}
#spend tr.near td{background:#fff6e0}#spend tr.over td{background:#fde8e8;font-weight:600}.auto-rule{color:#256029}
.timeline{list-style:none;padding:0}.event{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.4rem .7rem;margin:.3rem 0}.event .when{color:var(--muted);font-size:12px;margin-right:.3rem}
.login{max-width:26rem;margin:4rem auto}.login label{display:block;margin:.8rem 0}.login input{width:100%}
`;

export const APP_JS = `'use strict';
(function () {
  var topics = (document.body.getAttribute('data-topics') || '').split(' ').filter(Boolean);
  var live = document.getElementById('live');
  var pending = false, busy = false;
  function typing() {
    var a = document.activeElement;
    return a && a.closest && a.closest('#main') && (a.tagName === 'INPUT' || a.tagName === 'TEXTAREA') && a.value !== '';
  }
  function refresh() {
    if (busy) { pending = true; return; }
    if (typing()) { pending = true; return; }
    busy = true; pending = false;
    fetch(location.pathname + location.search, { headers: { 'X-D8-Fragment': '1' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { document.getElementById('main').innerHTML = html; document.dispatchEvent(new Event('d8:updated')); } })
      .catch(function () {})
      .then(function () { busy = false; if (pending) setTimeout(refresh, 100); });
  }
  document.addEventListener('focusout', function () { if (pending) setTimeout(refresh, 50); });
  document.addEventListener('submit', function (e) {
    var b = e.submitter || e.target.querySelector('button');
    var q = b && b.getAttribute('data-confirm');
    if (q && !window.confirm(q)) e.preventDefault();
  });
  if (!topics.length || !window.EventSource) return;
  var es = new EventSource('/live');
  es.addEventListener('open', function () { if (live) { live.textContent = '● live'; live.className = 'live on'; } });
  es.addEventListener('error', function () { if (live) { live.textContent = '○ reconnecting'; live.className = 'live'; } });
  es.addEventListener('change', function (e) {
    var changed = [];
    try { changed = JSON.parse(e.data).topics || []; } catch (_) { return; }
    if (changed.some(function (t) { return topics.indexOf(t) >= 0; })) refresh();
  });
})();
`;
