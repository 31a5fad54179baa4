/**
 * The dashboard off loopback (bound to 127.0.0.2, which counts as "not loopback": only 127.0.0.1,
 * ::1 and localhost do), served by a real `d8 master`: the generated token file, the login page
 * and no data without it, /metrics with a bearer token, login rate limiting, Secure cookies behind
 * a trusted HTTPS proxy, logout.
 */
import fs from 'fs';
import path from 'path';
import { Fleet, freePort, waitFor } from './master-support/fleet';
import { DashboardClient } from './master-support/dashboard';

jest.setTimeout(120_000);

describe('dashboard on a non-loopback bind (real master, real agent)', () => {
  const fleet = new Fleet('dashlogin');
  let port: number;
  let daemon: ReturnType<Fleet['daemon']>;
  let token: string;
  const tokenFile = () => path.join(fleet.home, 'dashboard-token');

  beforeAll(async () => {
    port = await freePort();
    const agentPort = await freePort();
    const c = fleet.initRepo([{ name: 'solo', port: agentPort }], { dashboard: { port, bind: '127.0.0.2', trustProxy: true } });
    await fleet.agent('solo', agentPort, c.main);
    daemon = fleet.daemon();
    await waitFor(() => fleet.slave('solo')?.state === 'healthy', 60_000, 'solo healthy');
    await waitFor(() => /dashboard on http:\/\/127\.0\.0\.2/.test(daemon.log()), 30_000, 'the dashboard start line');
    token = fs.readFileSync(tokenFile(), 'utf8').trim();
  });
  afterAll(async () => {
    await fleet.cleanup();
  });

  it('generates the token into D8_HOME with mode 0600 and logs where it is, never the token', () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(fs.statSync(tokenFile()).mode & 0o777).toBe(0o600);
    const log = daemon.log();
    expect(log).toContain(`dashboard token generated into ${tokenFile()} (mode 0600); read it with: cat ${tokenFile()}`);
    expect(log).not.toContain(token);
  });

  it('without a session: the login page and no data, for pages, live updates and actions', async () => {
    const web = new DashboardClient(port, '127.0.0.2');
    for (const p of ['/', '/requests', '/events', '/slaves/solo', '/live']) {
      const r = await web.get(p);
      expect(r.status).toBe(401);
      expect(r.text).toContain('needs the dashboard token');
      expect(r.text).not.toContain('solo');
    }
    expect((await web.post('/slaves/solo/retry', {}, 'x')).status).toBe(401);
    expect((await web.post('/logout', {}, 'x')).status).toBe(401);
  });

  it('/metrics needs the token as a bearer token', async () => {
    const web = new DashboardClient(port, '127.0.0.2');
    expect((await web.get('/metrics')).status).toBe(401);
    expect((await web.get('/metrics', { Authorization: 'Bearer wrong-token-wrong-token-wrong' })).status).toBe(401);
    const ok = await web.get('/metrics', { Authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(ok.text).toMatch(/^d8_slave_up\{slave="solo"\} 1$/m);
  });

  it('rate-limits failed logins per client (429 with Retry-After), even for the right token afterwards', async () => {
    const attacker = new DashboardClient(port, '127.0.0.2', '127.0.0.3');
    for (let i = 0; i < 5; i++) {
      const r = await attacker.post('/login', { token: `guess-${i}-abcdefghijklmnopqrstuvwxyz` }, null);
      expect(r.status).toBe(401);
      expect(r.text).toContain('That is not the dashboard token.');
    }
    const blocked = await attacker.post('/login', { token }, null);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect(blocked.headers['set-cookie']).toBeUndefined();
    expect(daemon.log()).not.toContain('guess-0-abcdefghijklmnopqrstuvwxyz');
  });

  it('the token gives a session cookie (Secure behind a trusted HTTPS proxy); logout ends it', async () => {
    const web = new DashboardClient(port, '127.0.0.2');
    const login = await web.post('/login', { token }, null, { 'X-Forwarded-Proto': 'https' });
    expect(login.status).toBe(303);
    expect(login.headers['set-cookie']?.[0]).toMatch(/^d8_session=[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
    const page = await web.get('/');
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/<tr data-slave="solo" data-state="healthy"/);
    expect(page.text).not.toContain(token);
    // A forged POST (session cookie but no CSRF token) is refused.
    expect((await web.post('/slaves/solo/retry', {}, null)).status).toBe(403);
    const out = await web.post('/logout');
    expect(out.status).toBe(303);
    expect(out.headers.location).toBe('/login');
    expect((await web.get('/')).status).toBe(401);
  });
});
