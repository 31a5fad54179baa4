/**
 * The dashboard over HTTP, served by a real `d8 master` child process supervising real agents on
 * loopback: pages, decisions through the shared RequestService (seen by `d8 requests`), CSRF, Host
 * and Origin checks, bad input (400/404/405/409/413/421, never a crash), live updates over SSE,
 * /metrics parsed by a Prometheus text-format parser against the store, and the build log viewer.
 */
import fs from 'fs';
import http from 'http';
import path from 'path';
import parsePrometheus from 'parse-prometheus-text-format';
import { Fleet, freePort, waitFor } from './master-support/fleet';
import { DashboardClient, sample } from './master-support/dashboard';

jest.setTimeout(180_000);

describe('dashboard on a loopback bind (real master, real agents)', () => {
  const fleet = new Fleet('dash');
  let port: number;
  let daemon: ReturnType<Fleet['daemon']>;
  let web: DashboardClient;

  beforeAll(async () => {
    port = await freePort();
    const specs = [
      { name: 'steady', port: await freePort() },
      { name: 'gated', port: await freePort(), autoUpdate: 'approve' as const },
    ];
    const c = fleet.initRepo(specs, { dashboard: { port } });
    await fleet.agent('steady', specs[0].port, c.main);
    await fleet.agent('gated', specs[1].port, c.base);
    daemon = fleet.daemon();
    web = new DashboardClient(port);
    await waitFor(() => fleet.slave('steady')?.state === 'healthy' && fleet.slave('gated')?.state === 'version_mismatch', 60_000, 'slaves checked');
    await waitFor(async () => (await web.get('/').catch(() => null))?.status === 200, 30_000, 'dashboard up');
  });
  afterAll(async () => {
    await fleet.cleanup();
  });

  it('logs where it listens and that loopback needs no login', () => {
    expect(daemon.log()).toContain(`dashboard on http://127.0.0.1:${port}/ (loopback: no login)`);
  });

  it('the fleet page lists every slave with its state, drift and commit distance', async () => {
    const r = await web.get('/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.text).toMatch(/<tr data-slave="steady" data-state="healthy"/);
    expect(r.text).toMatch(/<tr data-slave="gated" data-state="version_mismatch"/);
    expect(r.text).toContain(`<code>${fleet.commits.base.slice(0, 7)}</code> · 1 commit behind <code>${fleet.commits.main.slice(0, 7)}</code>`);
    expect(r.text).toMatch(/<svg class="chart"[^>]*><title>\d+ checks since/);
    expect(r.text).not.toContain(fleet.token);
  });

  it('gives a session cookie that is HttpOnly and SameSite=Strict, with strict security headers', async () => {
    const fresh = new DashboardClient(port);
    const r = await fresh.get('/requests');
    const cookie = r.headers['set-cookie']?.[0] ?? '';
    expect(cookie).toMatch(/^d8_session=[A-Za-z0-9_-]{40,}; Path=\/; HttpOnly; SameSite=Strict$/);
    expect(r.headers['content-security-policy']).toContain("script-src 'self'");
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(fresh.csrf).toMatch(/^[A-Za-z0-9_-]{30,}$/);
    // A scraper gets no session (it would crowd out the browsers' sessions); HEAD works like GET.
    const scraper = new DashboardClient(port);
    expect((await scraper.get('/metrics')).headers['set-cookie']).toBeUndefined();
    const head = await scraper.request('HEAD', '/requests');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
  });

  it('approving in the dashboard changes the request in the store, and `d8 requests` sees it', async () => {
    const req = await waitFor(() => fleet.db().requests.list().find((x) => x.action?.slave === 'gated' && x.status === 'PENDING'), 60_000, 'the update request for gated');
    await web.get('/requests');
    const page = await web.get('/requests');
    expect(page.text).toContain(`data-decision="approve" data-request="${req.id}"`);
    const r = await web.post(`/requests/${req.id}/approve`);
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/requests');
    expect(fleet.db().requests.get(req.id).status).toBe('APPROVED');
    expect(fleet.db().requests.get(req.id).notes).toMatch(/APPROVED: by dashboard/);
    const cli = await fleet.cli(['requests', 'list', '--all', '--json']);
    expect(cli.code).toBe(0);
    expect((JSON.parse(cli.stdout) as Array<{ id: string; status: string }>).find((x) => x.id === req.id)?.status).toMatch(/APPROVED|COMPLETED/);
    const after = await web.get('/requests');
    expect(after.text).toContain(`${req.id} approved:`);
    // The daemon runs the approved update; the slave ends on the master's commit.
    await waitFor(() => fleet.slave('gated')?.state === 'healthy', 60_000, 'gated updated after the approval');
  });

  it('reject with a reason, then a second decision on a final request is a 409', async () => {
    const created = await fleet.cli(['requests', 'create', '--type', 'PAYMENT', '--title', 'Renew the VPS', '--json']);
    const id = (JSON.parse(created.stdout) as { id: string }).id;
    const r = await web.post(`/requests/${id}/reject`, { reason: 'too expensive' });
    expect(r.status).toBe(303);
    const shown = await fleet.cli(['requests', 'show', id, '--json']);
    const req = JSON.parse(shown.stdout) as { status: string; notes: string };
    expect(req.status).toBe('REJECTED');
    expect(req.notes).toMatch(/REJECTED: too expensive \(dashboard\)/);
    const again = await web.post(`/requests/${id}/approve`);
    expect(again.status).toBe(409);
    expect(again.text).toContain('it is final');
  });

  it('refuses a POST without the CSRF token, with a wrong one, or from another origin (403), and changes nothing', async () => {
    const created = await fleet.cli(['requests', 'create', '--type', 'DESIGN_DECISION', '--title', 'Pick a logo', '--json']);
    const id = (JSON.parse(created.stdout) as { id: string }).id;
    expect((await web.post(`/requests/${id}/approve`, {}, null)).status).toBe(403);
    expect((await web.post(`/requests/${id}/approve`, {}, 'x'.repeat(32))).status).toBe(403);
    expect((await web.post(`/requests/${id}/approve`, {}, web.csrf, { Origin: 'http://evil.example' })).status).toBe(403);
    const stranger = new DashboardClient(port);
    expect((await stranger.post(`/requests/${id}/approve`, {}, web.csrf)).status).toBe(403);
    expect(fleet.db().requests.get(id).status).toBe('PENDING');
    const ok = await web.post(`/requests/${id}/postpone`, {}, web.csrf, { Origin: `http://127.0.0.1:${port}` });
    expect(ok.status).toBe(303);
    expect(fleet.db().requests.get(id).status).toBe('POSTPONED');
  });

  it('answers bad input with the right status and a message, never a crash', async () => {
    expect((await web.get('/nope')).status).toBe(404);
    expect((await web.get('/slaves/nosuch')).status).toBe(404);
    const m405 = await web.request('DELETE', '/requests');
    expect(m405.status).toBe(405);
    expect(m405.headers.allow).toBe('GET');
    expect((await web.get('/requests/req-0001/approve')).status).toBe(405);
    expect((await web.post('/requests/not-an-id/approve')).status).toBe(400);
    expect((await web.post('/requests/req-9999/approve')).status).toBe(404);
    expect((await web.post('/requests/req-0001/explode')).status).toBe(404);
    expect((await web.post('/requests/req-0002/reject', { reason: 'x'.repeat(501) })).status).toBe(400);
    expect((await web.get('/events?category=bogus')).status).toBe(400);
    expect((await web.get('/slaves/%E0%A4%A')).status).toBe(400);
    expect((await web.get('/slaves/steady/deploys/abc/log')).status).toBe(400);
    expect((await web.get('/slaves/steady/deploys/99999/log')).status).toBe(404);
    const big = await web.post('/requests/req-0002/reject', { reason: 'x'.repeat(20_000) });
    expect(big.status).toBe(413);
    const json = await web.request('POST', '/requests/req-0002/reject', { body: '{not json', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': web.csrf } });
    expect(json.status).toBe(400);
    expect(json.body.error).toMatch(/not valid JSON/);
    const weird = await web.request('POST', '/requests/req-0002/reject', { body: 'x', headers: { 'Content-Type': 'text/plain', 'X-CSRF-Token': web.csrf } });
    expect(weird.status).toBe(415);
    // A rebinding DNS name pointing at 127.0.0.1 is refused.
    const rebound = await web.get('/', { Host: `evil.example:${port}` });
    expect(rebound.status).toBe(421);
    expect(rebound.text).not.toContain('data-slave');
    // An update the policy would ask a person for needs the confirmation box.
    await waitFor(() => fleet.slave('gated')?.state === 'healthy', 60_000, 'gated healthy');
    const noConfirm = await web.post('/slaves/gated/update');
    expect(noConfirm.status).toBe(400);
    expect(noConfirm.text).toContain('autoUpdate approve');
    expect(daemon.child.exitCode).toBeNull();
    expect((await web.get('/')).status).toBe(200);
  });

  it('Retry goes through the master like `d8 retry`, and the outcome shows on the slave page', async () => {
    const r = await web.post('/slaves/steady/retry');
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/slaves/steady');
    // A live refresh (fragment) racing the redirect does not take the flash from the page.
    expect((await web.get('/slaves/steady', { 'X-D8-Fragment': '1' })).text).not.toContain('<html');
    expect((await web.get('/slaves/steady')).text).toContain('Retry of steady started');
    await waitFor(async () => {
      const p = await web.get('/slaves/steady');
      return /steady is healthy \([0-9a-f]{7}\); nothing to do/.test(p.text) ? p : null;
    }, 30_000, 'the retry outcome');
    expect(daemon.log()).toMatch(/dashboard: retry steady/);
  });

  it('shows a build log as kept on disk, with every secret replaced by ***', async () => {
    const store = fleet.db();
    const dir = path.join(fleet.home, 'build_logs');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'steady-test-build.json');
    fs.writeFileSync(file, JSON.stringify({ slave_id: 'steady', status: 'failed', commands: [{ command: 'install', stdout: `token ${fleet.token} used`, stderr: 'GIT_TOKEN=abcdef123456' }] }));
    const id = store.deploys.start('dash', 'steady', 'direct', 'manual');
    store.deploys.finish(id, { ok: false, status: 'failed', slave: 'steady', engine: 'direct', strategy: 'native', commit: fleet.commits.main, attempts: [], buildLogPath: file, error: 'install failed', durationMs: 1200 } as never);
    const slavePage = await web.get('/slaves/steady');
    expect(slavePage.text).toContain(`/slaves/steady/deploys/${id}/log`);
    const log = await web.get(`/slaves/steady/deploys/${id}/log`);
    expect(log.status).toBe(200);
    expect(log.text).toContain('token *** used');
    expect(log.text).toContain('GIT_TOKEN=***');
    expect(log.text).not.toContain(fleet.token);
    // A row pointing outside D8_HOME is not read.
    const outside = store.deploys.start('dash', 'steady', 'direct', 'manual');
    store.deploys.finish(outside, { ok: false, status: 'failed', slave: 'steady', engine: 'direct', strategy: null, commit: null, attempts: [], buildLogPath: '/etc/passwd', error: 'x', durationMs: 1 } as never);
    const refused = await web.get(`/slaves/steady/deploys/${outside}/log`);
    expect(refused.status).toBe(404);
    expect(refused.text).not.toContain('root:');
  });

  it('pushes a change over server-sent events when another process changes the store', async () => {
    const events: string[] = [];
    const req = http.get({ host: '127.0.0.1', port, path: '/live', headers: { Host: `127.0.0.1:${port}`, Cookie: web.cookie }, agent: false });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => { req.once('response', resolve); req.once('error', reject); });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    res.on('data', (c: Buffer) => events.push(c.toString()));
    const started = Date.now();
    await fleet.cli(['requests', 'create', '--type', 'INFRASTRUCTURE', '--title', 'Add a disk']);
    await waitFor(() => events.join('').match(/event: change\ndata: \{"topics":\[[^\]]*"requests"/), 10_000, 'a requests change event');
    expect(Date.now() - started).toBeLessThan(10_000);
    req.destroy();
  });

  it('the events timeline shows decisions and state changes from the outbox', async () => {
    const r = await web.get('/events');
    expect(r.status).toBe(200);
    expect(r.text).toMatch(/class="event cat-decision"/);
    expect(r.text).toMatch(/is now APPROVED/);
    const filtered = await web.get('/events?slave=gated&category=decision');
    expect(filtered.text).not.toContain('Renew the VPS');
  });

  it('serves /metrics in the Prometheus text format, matching the store', async () => {
    const r = await web.get('/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const fams = parsePrometheus(r.text);
    const store = fleet.db();
    for (const s of store.slaves.list('dash')) {
      expect(sample(fams, 'd8_slave_state', { slave: s.name, state: s.state })?.value).toBe('1');
      expect(sample(fams, 'd8_slave_up', { slave: s.name })?.value).toBe(['healthy', 'version_mismatch'].includes(s.state) ? '1' : '0');
      expect(sample(fams, 'd8_slave_drift', { slave: s.name, drift: s.drift })?.value).toBe('1');
    }
    const counts = Object.fromEntries((store.db.prepare('SELECT status, COUNT(*) AS n FROM human_requests GROUP BY status').all() as Array<{ status: string; n: number }>).map((x) => [x.status, x.n]));
    expect(sample(fams, 'd8_requests', { status: 'REJECTED' })?.value).toBe(String(counts.REJECTED));
    expect(sample(fams, 'd8_requests', { status: 'PENDING' })?.value).toBe(String(counts.PENDING ?? 0));
    // This parser folds the label sets of a labelled histogram into one; its count is checked on the raw line.
    expect(Number(/^d8_check_latency_seconds_count\{slave="steady"\} (\d+)$/m.exec(r.text)?.[1])).toBeGreaterThan(0);
    expect(Number(sample(fams, 'd8_sweep_duration_seconds')?.count)).toBeGreaterThan(0);
    expect(Number(sample(fams, 'd8_deploys_total', { engine: 'direct', result: 'failed' })?.value)).toBeGreaterThanOrEqual(2);
    expect(sample(fams, 'd8_slave_commits_behind', { slave: 'steady' })?.value).toBe('0');
    expect(sample(fams, 'd8_outbox_depth')?.value).toMatch(/^\d+$/);
    expect(fams.find((f) => f.name === 'd8_check_latency_seconds')?.type).toBe('HISTOGRAM');
    expect(r.text).not.toContain(fleet.token);
  });
});
