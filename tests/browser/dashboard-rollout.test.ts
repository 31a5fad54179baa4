/**
 * A rollout on the dashboard (issue 14) in a real browser (Debian chromium through playwright-core)
 * against a real `d8 master` with the REAL direct deployer installing three `host: local` slaves
 * with the real install.sh. The dashboard is bound to 127.0.0.3, so it needs a login and every POST
 * its session's CSRF token. Without a reload the fleet page shows a bad release halted at its canary
 * (rolled back, the others pending, the retry request linked), Abort ends it, then a good release
 * runs: Pause holds it (nothing new is deployed), Resume finishes it; a click on a rollout that is no
 * longer the latest is refused, and so is a POST without the CSRF token.
 *
 * D8_SCREENSHOT_DIR=<dir> keeps rollout-halted.png and rollout-paused.png there.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import type { BrowserContext, Page } from 'playwright-core';
import { Fleet, freePort, waitFor, sleep, realAgentRepo, stopAgentsUnder } from '../integration/master-support/fleet';
import { describeTier } from '../support/tier';
import { browserTier, launchBrowser } from '../support/browser';

jest.setTimeout(600_000);

const NAMES = ['s1', 's2', 's3'];
const HEALTHY_FOR = 8;

describeTier(browserTier, 'a rollout on the dashboard in a real browser (real master, real direct deployer)', () => {
  const fleet = new Fleet('browser');
  const slaveHome = path.join(fleet.root, 'slave-home');
  const shots = process.env.D8_SCREENSHOT_DIR ? path.resolve(process.env.D8_SCREENSHOT_DIR) : fs.mkdtempSync(path.join(os.tmpdir(), 'd8-shots-'));
  let git: (...args: string[]) => string;
  let base: string;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  let page: Page;
  let goodMain: string;
  let first: string;
  const mainTs = () => path.join(fleet.repo, 'agent', 'main.ts');
  const commitAll = (msg: string): string => { git('add', '-A'); git('commit', '-q', '-m', msg); return git('rev-parse', 'HEAD'); };
  const rollout = (commit: string) => fleet.db().rollouts.forCommit('browser', commit);
  const deploysOf = (commit: string) => fleet.db().deploys.list('browser', undefined, 500).filter((d) => d.reason === `rollout ${commit.slice(0, 7)}`);

  beforeAll(async () => {
    const port = await freePort();
    const ports = await Promise.all(NAMES.map(() => freePort()));
    fs.mkdirSync(slaveHome);
    git = realAgentRepo(fleet, NAMES.map((name, i) => ({ name, port: ports[i] })), {
      installAttempts: 1, installDelaySeconds: 0, dashboard: { port, bind: '127.0.0.3' },
      rollout: { canary: 1, batchSize: 2, healthyForSeconds: HEALTHY_FOR, maxFailures: 1 },
    });
    goodMain = fs.readFileSync(mainTs(), 'utf8');
    first = git('rev-parse', 'HEAD');
    fleet.daemon({ env: { HOME: slaveHome }, tuning: { deadAfter: 2, settleMs: 60_000 }, realDeployer: true });
    base = `http://127.0.0.3:${port}`;
    await waitFor(() => NAMES.every((n) => fleet.slave(n)?.state === 'healthy' && fleet.slave(n)?.commit === first), 400_000, 'the first installs', 500);
    await waitFor(() => NAMES.every((n) => fleet.db().releases.slave('browser', n)?.good_commit === first), 30_000, 'the first release recorded as good');
    ({ context, close: closeBrowser } = await launchBrowser());
    page = await context.newPage();
    await page.goto(`${base}/login`);
    await page.fill('input[name=token]', fs.readFileSync(path.join(fleet.home, 'dashboard-token'), 'utf8').trim());
    await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit]')]);
    await page.waitForSelector('#live.on', { timeout: 10_000 });
  });

  afterAll(async () => {
    await closeBrowser?.();
    await stopAgentsUnder(slaveHome);
    await fleet.cleanup();
  });

  it('shows no rollout before the first one', async () => {
    await page.waitForSelector('tr[data-slave="s3"][data-state="healthy"]');
    expect(await page.locator('#rollout').count()).toBe(0);
  });

  it('a bad release appears halted at its canary without a reload: s1 rolled back, s2 and s3 pending, the retry request linked; Abort ends it', async () => {
    await page.evaluate(() => { (globalThis as unknown as { d8Marker: number }).d8Marker = 14; });
    fs.writeFileSync(mainTs(), `console.error('this release is broken'); process.exit(3);\n${goodMain}`);
    const bad = commitAll('bad release');
    await page.waitForSelector('#rollout[data-status="halted"] tr[data-member="s1"][data-status="rolled_back"]', { timeout: 300_000 });
    const r = rollout(bad)!;
    expect(r.status).toBe('halted');
    expect(await page.textContent('#rollout h2')).toContain(`Rollout ${r.id} of ${bad.slice(0, 7)}`);
    expect(await page.textContent('#rollout h2')).toContain('stage 1/2');
    expect(await page.textContent('#rollout [data-group="rolled_back"]')).toBe('rolled back s1');
    expect(await page.textContent('#rollout [data-group="pending"]')).toBe('pending s2, s3');
    expect(await page.locator('#rollout tr[data-member]').evaluateAll((rows) => rows.map((x) => `${x.getAttribute('data-member')}=${x.getAttribute('data-status')}`)))
      .toEqual(['s1=rolled_back', 's2=pending', 's3=pending']);
    expect(await page.getAttribute(`#rollout a[href="/requests#${r.request_id}"]`, 'href')).toBe(`/requests#${r.request_id}`);
    // A halted rollout can be aborted only: no Pause, no Resume.
    expect(await page.locator('#rollout button[data-rollout-action]').evaluateAll((bs) => bs.map((b) => b.getAttribute('data-rollout-action')))).toEqual(['abort']);
    expect(await page.evaluate(() => (globalThis as unknown as { d8Marker?: number }).d8Marker)).toBe(14);
    await page.screenshot({ path: path.join(shots, 'rollout-halted.png'), fullPage: true });

    page.once('dialog', (d) => void d.accept());
    await Promise.all([page.waitForURL(`${base}/`), page.click('#rollout button[data-rollout-action="abort"]')]);
    expect(rollout(bad)!.status).toBe('aborted');
    await page.waitForSelector(`p#rollout[data-status="aborted"][data-rollout="${r.id}"]`);
    expect(await page.textContent('#flash')).toContain(`rollout ${r.id} of ${bad.slice(0, 7)} aborted`);
  });

  // The one-shot message after a click stays on the page through the live updates that follow it
  // (it lived inside the part a live update replaces, and vanished under the user's eyes).
  it('a good release: Pause holds it (nothing new deployed), Resume finishes it; a stale click and a POST without CSRF are refused', async () => {
    fs.writeFileSync(mainTs(), goodMain);
    fs.writeFileSync(path.join(fleet.repo, 'agent', 'release-note.txt'), 'good\n');
    const good = commitAll('good release');
    await page.waitForSelector('#rollout[data-status="running"] tr[data-member="s1"][data-status="gate"]', { timeout: 300_000 });
    const r = rollout(good)!;
    await Promise.all([page.waitForURL(`${base}/`), page.click('#rollout button[data-rollout-action="pause"]')]);
    expect(rollout(good)!.status).toBe('paused');
    await page.waitForSelector('#rollout[data-status="paused"] button[data-rollout-action="resume"]');
    const deployedAtPause = deploysOf(good).length;
    await sleep((HEALTHY_FOR + 3) * 1000);
    expect(deploysOf(good)).toHaveLength(deployedAtPause);
    expect(rollout(good)!.status).toBe('paused');
    expect(await page.textContent('#flash')).toContain(`rollout ${r.id} of ${good.slice(0, 7)} paused`);
    await page.screenshot({ path: path.join(shots, 'rollout-paused.png'), fullPage: true });

    // A click on a rollout the page showed earlier, now superseded, is refused; so is a POST without the CSRF token.
    const stale = await page.evaluate(async (id) => {
      const csrf = (globalThis as unknown as { document: { querySelector(s: string): { getAttribute(a: string): string } } }).document.querySelector('meta[name=d8-csrf]').getAttribute('content');
      const res = await fetch('/rollout/abort', { method: 'POST', headers: { Accept: 'application/json' }, body: new URLSearchParams({ _csrf: csrf, rollout: String(id) }) });
      return { status: res.status, body: await res.json() as { error: string } };
    }, r.id - 1);
    expect(stale.status).toBe(409);
    expect(stale.body.error).toContain(`rollout ${r.id - 1} is no longer the latest`);
    const forged = await page.evaluate(async () => (await fetch('/rollout/abort', { method: 'POST', body: new URLSearchParams({}) })).status);
    expect(forged).toBe(403);
    expect(rollout(good)!.status).toBe('paused');

    await Promise.all([page.waitForURL(`${base}/`), page.click('#rollout button[data-rollout-action="resume"]')]);
    await page.waitForSelector(`p#rollout[data-status="done"][data-rollout="${r.id}"]`, { timeout: 300_000 });
    expect(await page.textContent('p#rollout')).toContain('3 updated');
    expect(await page.textContent('#flash')).toContain(`rollout ${r.id} of ${good.slice(0, 7)} resumed from its stage`);
    expect(deploysOf(good).map((d) => [d.slave, d.status]).sort()).toEqual([['s1', 'ok'], ['s2', 'ok'], ['s3', 'ok']]);
    await waitFor(() => NAMES.every((n) => fleet.slave(n)?.commit === good), 60_000, 'all three at the good commit');
  });
});
