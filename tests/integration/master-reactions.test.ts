/**
 * Issue 12, reactions in seconds, with a real `d8 master` and real agents (the deployer is the spawn
 * test double, which restarts the real agent): the master notices its own HEAD moving at once and
 * starts the update within 2 s although its sweep interval is 30 s; a failing slave is re-checked at
 * `d8:retryIntervalSeconds`, declared dead after the retries, recovered at once, alerted once, and
 * the recovery message follows.
 */
import { Fleet, freePort, waitFor } from './master-support/fleet';
import type { AgentHandle } from '../support/agent-process';

jest.setTimeout(180_000);

const ms = (iso: string): number => Date.parse(iso);

describe('the master notices its own HEAD moving at once', () => {
  const fleet = new Fleet('headwatch');
  let daemon: ReturnType<Fleet['daemon']>;

  beforeAll(async () => {
    const port = await freePort();
    const c = fleet.initRepo([{ name: 'w', port }]);
    await fleet.agent('w', port, c.main);
    daemon = fleet.daemon({ args: ['--interval', '30'] });
    await waitFor(() => fleet.slave('w')?.state === 'healthy', 30_000, 'w healthy');
  });
  afterAll(async () => {
    await fleet.cleanup();
  });

  it('each commit on the master starts the update of the now-behind slave within 2 s (sweep interval 30 s)', async () => {
    expect(daemon.log()).toMatch(/every 30s/);
    for (let i = 1; i <= 3; i++) {
      const t0 = Date.now();
      const next = fleet.commitOnMain(`moved-${i}.txt`);
      const deploy = await waitFor(() => { const l = fleet.db().deploys.list('headwatch', 'w'); return l.length === i ? l[0] : null; }, 10_000, `update ${i} to start`);
      const startedAfterMs = ms(deploy.started_at) - t0;
      await waitFor(() => fleet.alerts('w').filter((a) => a.kind === 'update_done').length === i, 30_000, `update ${i} done`);
      const healthyAfterMs = Date.now() - t0;
      // eslint-disable-next-line no-console
      console.log(`HEAD moved (${i}): update started after ${startedAfterMs} ms, slave healthy at the new commit after ${healthyAfterMs} ms`);
      expect(startedAfterMs).toBeLessThanOrEqual(2000);
      expect(deploy.reason).toBe('behind');
      expect(fleet.slave('w')).toMatchObject({ state: 'healthy', commit: next });
    }
    expect(daemon.log()).toMatch(/the master's HEAD moved: sweeping now/);
    // One update per commit, not one per watch event.
    expect(fleet.db().deploys.list('headwatch', 'w')).toHaveLength(3);
  });
});

describe('a failing slave is re-checked at the retry interval', () => {
  const fleet = new Fleet('retry');
  let agent: AgentHandle;
  let daemon: ReturnType<Fleet['daemon']>;

  beforeAll(async () => {
    const port = await freePort();
    const c = fleet.initRepo([{ name: 'k', port }], { retryIntervalSeconds: 1 });
    agent = await fleet.agent('k', port, c.main);
    daemon = fleet.daemon({ args: ['--interval', '10'], tuning: { deadAfter: 3 } });
    await waitFor(() => fleet.slave('k')?.state === 'healthy', 30_000, 'k healthy');
  });
  afterAll(async () => {
    await fleet.cleanup();
  });

  it('SIGKILL: pending, two retries a second apart, dead, recovery at once; one dead alert, then the recovery message', async () => {
    process.kill(agent.pid, 'SIGKILL');
    const t0 = Date.now();
    await waitFor(() => fleet.alerts('k').find((a) => a.kind === 'slave_recovered'), 60_000, 'k recovered');
    const recoveredAfterMs = Date.now() - t0;

    const history = fleet.db().slaves.history('retry', 'k', 50).reverse();
    const firstFail = history.findIndex((h) => !h.ok);
    const failures = history.slice(firstFail).filter((h) => !h.ok).slice(0, 3).map((h) => ms(h.at));
    const deploy = fleet.db().deploys.list('retry', 'k')[0];
    // eslint-disable-next-line no-console
    console.log(`killed: first failed check after ${failures[0] - t0} ms, retries ${failures.slice(1).map((f, i) => f - failures[i]).join(' ms, ')} ms apart, ` +
      `recovery deploy ${ms(deploy.started_at) - failures[2]} ms after the third, healthy after ${recoveredAfterMs} ms`);
    expect(failures).toHaveLength(3);
    expect(failures[1] - failures[0]).toBeLessThan(2500);
    expect(failures[2] - failures[1]).toBeLessThan(2500);
    expect(ms(deploy.started_at) - failures[2]).toBeLessThan(1500);
    expect(deploy).toMatchObject({ reason: 'dead', status: 'ok' });

    await new Promise((r) => setTimeout(r, 3000));
    const kinds = fleet.alerts('k').map((a) => a.kind);
    expect(kinds).toEqual(['slave_dead', 'slave_recovered']);
    expect(fleet.slave('k')?.state).toBe('healthy');
    expect(daemon.log()).toMatch(/"retry_interval_s":1/);
  });
});

describe('a slave busy when HEAD moved is updated as soon as its task ends', () => {
  const fleet = new Fleet('missed');

  beforeAll(async () => {
    const port = await freePort();
    const c = fleet.initRepo([{ name: 'm', port }]);
    await fleet.agent('m', port, c.base); // behind: the first sweep updates it
    fleet.daemon({ args: ['--interval', '30'], env: { D8_TEST_DEPLOY_TAIL_MS: '3000' } });
  });
  afterAll(async () => {
    await fleet.cleanup();
  });

  it('HEAD moves during an update: the next update starts within 2 s of the first one ending (sweep interval 30 s)', async () => {
    await waitFor(() => fleet.db().deploys.list('missed', 'm')[0], 30_000, 'the first update');
    const next = fleet.commitOnMain('during.txt');
    const first = await waitFor(() => fleet.db().deploys.list('missed', 'm').find((d) => d.status !== 'running'), 30_000, 'the first update to end');
    expect(first.commit).not.toBe(next);
    const second = await waitFor(() => fleet.db().deploys.list('missed', 'm').filter((d) => d.id !== first.id)[0], 40_000, 'the second update');
    expect(second.reason).toBe('behind');
    expect(ms(second.started_at) - ms(first.finished_at!)).toBeLessThan(2000);
    await waitFor(() => fleet.slave('m')?.commit === next && fleet.slave('m')?.state === 'healthy', 30_000, 'm at the new commit');
  });
});

describe('issue 25: a killed agent is noticed over its channel, not at the next sweep', () => {
  const fleet = new Fleet('channel');
  let agent: AgentHandle;
  let daemon: ReturnType<Fleet['daemon']>;

  beforeAll(async () => {
    const port = await freePort();
    const c = fleet.initRepo([{ name: 'c', port }]);
    agent = await fleet.agent('c', port, c.main);
    daemon = fleet.daemon({ args: ['--interval', '30'] });
    await waitFor(() => fleet.slave('c')?.state === 'healthy', 30_000, 'c healthy');
  });
  afterAll(async () => {
    await fleet.cleanup();
  });

  it('SIGKILL under the default 30 s interval: noticed within 1 s, its failed check recorded within 3 s, dead and recovered after the retries', async () => {
    // The channel opens within a second of the start; give it that before the kill.
    await new Promise((r) => setTimeout(r, 2000));
    const before = fleet.db().slaves.history('channel', 'c', 50).length;
    process.kill(agent.pid, 'SIGKILL');
    const t0 = Date.now();
    const firstFail = await waitFor(() => fleet.db().slaves.history('channel', 'c', 50).find((h) => !h.ok), 5000, 'a failed check');
    const checkedMs = ms(firstFail.at) - t0;
    const lostLine = daemon.log().split('\n').filter((l) => l.includes('channel to c lost')).map((l) => JSON.parse(l) as { time: number })[0];
    const noticedMs = lostLine.time - t0;
    await waitFor(() => fleet.alerts('c').find((a) => a.kind === 'slave_recovered'), 60_000, 'c recovered');
    const healthyMs = Date.now() - t0;
    // eslint-disable-next-line no-console
    console.log(`channel: killed agent noticed after ${noticedMs} ms, its failed check recorded after ${checkedMs} ms (the sweep interval is 30 s), healthy again after ${healthyMs} ms`);
    expect(noticedMs).toBeLessThan(1000);
    expect(checkedMs).toBeLessThan(3000); // the check's own attempts (3, with backoff) follow the notice
    expect(fleet.db().slaves.history('channel', 'c', 50).length).toBeGreaterThan(before);
    expect(fleet.slave('c')?.state).toBe('healthy');

    // The recovered agent's channel is open again, and `d8 status` says so (the store's record, written by the daemon).
    await waitFor(() => fleet.db().channels.list('channel').get('c')?.connected, 40_000, "c's channel open again");
    const st = await fleet.cli(['status', '--stack', 'channel', '--repo', fleet.repo, '--json']);
    expect(st).toMatchObject({ code: 0, stderr: '' });
    const c = (JSON.parse(st.stdout) as { slaves: Array<{ name: string; channel: { connected: boolean; reconnects: number } | null }> }).slaves.find((x) => x.name === 'c');
    expect(c?.channel).toMatchObject({ connected: true });
    expect(c?.channel?.reconnects).toBeGreaterThanOrEqual(1);
    const text = await fleet.cli(['status', '--stack', 'channel', '--repo', fleet.repo]);
    expect(text.stdout).toMatch(/channel up \d+s \(\d+ reconnects?\)/);
  });
});
