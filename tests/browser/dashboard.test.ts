/**
 * The dashboard in a real browser (Debian chromium through playwright-core) against a real
 * `d8 master` with real agents on loopback and the Telegram Bot API stand-in. The dashboard is
 * bound to 127.0.0.2, which needs a login: the test logs in with the generated token, then checks
 * the fleet page, a killed agent turning red without a reload (SSE), an approval click reaching
 * the store, `d8 requests` and Telegram, and a forged POST being refused.
 *
 * D8_SCREENSHOT_DIR=<dir> keeps the fleet and requests screenshots there (`npm run screenshots`
 * writes docs/screenshots/).
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import type { BrowserContext, Page } from 'playwright-core';
import { Fleet, freePort, waitFor, alive } from '../integration/master-support/fleet';
import { TelegramStandIn } from '../support/telegram-standin';
import { describeTier } from '../support/tier';
import { browserTier, launchBrowser } from '../support/browser';

jest.setTimeout(180_000);

const CHAT = 70015;

describeTier(browserTier, 'dashboard in a real browser (chromium, real master, real agents)', () => {
  const fleet = new Fleet('browser');
  const standin = new TelegramStandIn();
  const shots = process.env.D8_SCREENSHOT_DIR ? path.resolve(process.env.D8_SCREENSHOT_DIR) : fs.mkdtempSync(path.join(os.tmpdir(), 'd8-shots-'));
  let base: string;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  let page: Page;

  beforeAll(async () => {
    await standin.start();
    standin.addChat(CHAT);
    const port = await freePort();
    const specs = [
      { name: 'desktop', port: await freePort() },
      { name: 'vps', port: await freePort(), autoUpdate: 'approve' as const },
      { name: 'laptop', port: await freePort() },
    ];
    const c = fleet.initRepo(specs, { dashboard: { port, bind: '127.0.0.2' } });
    await fleet.agent('desktop', specs[0].port, c.main);
    await fleet.agent('vps', specs[1].port, c.base);
    await fleet.agent('laptop', specs[2].port, c.main);
    // laptop's redeploys fail, so once killed it stays dead (and is escalated).
    fleet.daemon({ env: { TELEGRAM_TOKEN: standin.token, TELEGRAM_CHAT_ID: String(CHAT), TELEGRAM_API_ROOT: standin.apiRoot, D8_TEST_DEPLOY_FAIL: 'laptop' } });
    base = `http://127.0.0.2:${port}`;
    await waitFor(() => ['desktop', 'laptop'].every((n) => fleet.slave(n)?.state === 'healthy') && fleet.slave('vps')?.state === 'version_mismatch', 60_000, 'slaves checked');
    await waitFor(() => fs.existsSync(path.join(fleet.home, 'dashboard-token')), 30_000, 'the dashboard token');
    ({ context, close: closeBrowser } = await launchBrowser());
    page = await context.newPage();
  });
  afterAll(async () => {
    await closeBrowser?.();
    await fleet.cleanup();
    await standin.stop();
  });

  it('shows the login page and no data without the token, then logs in with it', async () => {
    const first = await page.goto(`${base}/`);
    expect(first?.status()).toBe(401);
    expect(await page.textContent('body')).toContain('needs the dashboard token');
    expect(await page.locator('tr[data-slave]').count()).toBe(0);
    await page.fill('input[name=token]', 'not-the-token-not-the-token-00');
    await page.click('button[type=submit]');
    await page.waitForSelector('text=That is not the dashboard token.');
    await page.fill('input[name=token]', fs.readFileSync(path.join(fleet.home, 'dashboard-token'), 'utf8').trim());
    await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit]')]);
    await page.waitForSelector('tr[data-slave="desktop"]');
  });

  it('the fleet page lists every slave with its state', async () => {
    expect(await page.locator('tr[data-slave]').evaluateAll((rows) => rows.map((r) => `${r.getAttribute('data-slave')}=${r.getAttribute('data-state')}`)))
      .toEqual(['desktop=healthy', 'vps=version_mismatch', 'laptop=healthy']); // stack file order
    expect(await page.textContent('tr[data-slave="vps"]')).toMatch(/1 commit behind/);
    await page.waitForSelector('#live.on', { timeout: 10_000 });
  });

  it('a killed agent turns its row red without a reload (server-sent events)', async () => {
    await page.evaluate(() => { (globalThis as unknown as { d8Marker: number }).d8Marker = 42; });
    const pid = Number(fs.readFileSync(path.join(fleet.agentsDir, 'laptop.pid'), 'utf8'));
    const killedAt = Date.now();
    process.kill(pid, 'SIGTERM');
    await waitFor(() => !alive(pid), 20_000, 'laptop agent gone');
    await page.waitForSelector('tr[data-slave="laptop"][data-state="dead"]', { timeout: 20_000 });
    const seconds = (Date.now() - killedAt) / 1000;
    expect(seconds).toBeLessThan(15);
    expect(await page.evaluate(() => (globalThis as unknown as { d8Marker?: number }).d8Marker)).toBe(42);
    // Read in the page in one step: a live update may replace the row between finding it and reading its style.
    const border = () => page.evaluate(() => {
      const g = globalThis as unknown as { document: { querySelector(s: string): unknown }; getComputedStyle(e: unknown): { borderLeftColor: string } };
      const td = g.document.querySelector('tr[data-slave="laptop"][data-state="dead"] td');
      return td ? g.getComputedStyle(td).borderLeftColor : null;
    });
    await waitFor(async () => (await border()) !== null, 5_000, 'the dead row');
    expect(await border()).toBe('rgb(198, 40, 40)');
    await page.screenshot({ path: path.join(shots, 'fleet.png'), fullPage: true });
  });

  it('an Approve click decides the request in the store; `d8 requests` and Telegram see it', async () => {
    const req = await waitFor(() => fleet.db().requests.list().find((r) => r.action?.slave === 'vps' && r.status === 'PENDING'), 60_000, 'the update request for vps');
    await fleet.cli(['requests', 'create', '--type', 'PAYMENT', '--title', 'Renew the VPS for a year', '--cost', '48', '--priority', 'high']);
    await page.goto(`${base}/requests`);
    await page.waitForSelector(`button[data-decision="approve"][data-request="${req.id}"]`);
    await page.screenshot({ path: path.join(shots, 'requests.png'), fullPage: true });
    await Promise.all([page.waitForURL(`${base}/requests`), page.click(`button[data-decision="approve"][data-request="${req.id}"]`)]);
    await page.waitForSelector(`text=${req.id} approved`);
    expect(['APPROVED', 'COMPLETED']).toContain(fleet.db().requests.get(req.id).status);
    const cli = await fleet.cli(['requests', 'list', '--all', '--json']);
    expect(['APPROVED', 'COMPLETED']).toContain((JSON.parse(cli.stdout) as Array<{ id: string; status: string }>).find((r) => r.id === req.id)?.status);
    await standin.waitFor(() => standin.sent(CHAT).find((m) => m.text.includes(`Request ${req.id} is now APPROVED`)), 30_000, 'the Telegram message of the approval');
  });

  it('a request filed elsewhere appears on the open requests page without a reload', async () => {
    await page.evaluate(() => { (globalThis as unknown as { d8Marker: number }).d8Marker = 7; });
    await fleet.cli(['requests', 'create', '--type', 'API_ACCOUNT', '--title', 'Open a mail API account']);
    await page.waitForSelector('text=Open a mail API account', { timeout: 10_000 });
    expect(await page.evaluate(() => (globalThis as unknown as { d8Marker?: number }).d8Marker)).toBe(7);
  });

  it('the slave page charts its checks; its Retry button runs in the master and the outcome appears live', async () => {
    await page.goto(`${base}/slaves/desktop`);
    expect(await page.locator('svg.chart polyline.lat').count()).toBe(1);
    await Promise.all([page.waitForURL(`${base}/slaves/desktop`), page.click('button[data-action="retry"]')]);
    await page.waitForSelector('text=Retry of desktop started');
    await page.waitForSelector('text=/desktop is healthy \\([0-9a-f]{7}\\); nothing to do/', { timeout: 20_000 });
    await page.screenshot({ path: path.join(shots, 'slave.png'), fullPage: true });
  });

  it('the events timeline shows the state change and the decision', async () => {
    await page.goto(`${base}/events`);
    await page.waitForSelector('li.event.cat-state[data-kind="slave_dead"] >> text=laptop');
    await page.waitForSelector('li.event.cat-decision >> text=/is now APPROVED/');
    await page.screenshot({ path: path.join(shots, 'events.png'), fullPage: false });
  });

  it('refuses a forged POST without the CSRF token', async () => {
    const id = fleet.db().requests.list({ open: true })[0].id;
    const status = await page.evaluate(async (rid) => (await fetch(`/requests/${rid}/reject`, { method: 'POST', body: new URLSearchParams({ reason: 'forged' }) })).status, id);
    expect(status).toBe(403);
    expect(fleet.db().requests.get(id).status).toBe('PENDING');
  });
});
