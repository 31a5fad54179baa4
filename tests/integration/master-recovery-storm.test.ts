/**
 * Issue 12, defect 2: ten slaves die at once and every one is redeployed exactly once. The deploys
 * take long enough that the sweeps running meanwhile open each slave's circuit breaker; the check that
 * follows a successful deploy must still contact the agent (a deploy that succeeded resets the
 * breaker), or the recovery is counted as failed and the healthy slave is redeployed again and again.
 * Real daemon, real agents; the deployer is the spawn test double (it restarts the real agent).
 */
import { Fleet, freePort, waitFor } from './master-support/fleet';
import type { AgentHandle } from '../support/agent-process';

jest.setTimeout(180_000);

const N = 10;
const DEPLOY_MS = 6000;

describe('d8 master: ten slaves killed at once come back with one deploy each', () => {
  const fleet = new Fleet('storm');
  const names = Array.from({ length: N }, (_, i) => `s${i}`);
  const agents: AgentHandle[] = [];
  let daemon: ReturnType<Fleet['daemon']>;

  beforeAll(async () => {
    const specs = await Promise.all(names.map(async (name) => ({ name, port: await freePort() })));
    const c = fleet.initRepo(specs);
    for (const s of specs) agents.push(await fleet.agent(s.name, s.port, c.main));
    daemon = fleet.daemon({
      // The defaults for the breaker (opens after 5 failures, for 60 s); sweeps every second.
      tuning: { deadAfter: 2, settleMs: 15000, recoveryBackoffMs: 500, recoveryBackoffMaxMs: 1000 },
      env: { D8_TEST_DEPLOY_DELAY_MS: String(DEPLOY_MS) },
    });
    await waitFor(() => names.every((n) => fleet.slave(n)?.state === 'healthy'), 60_000, 'all healthy');
  });
  afterAll(async () => {
    await fleet.cleanup();
  });

  it('one deploy per slave, each recovery counted as a success, one dead alert and one recovery alert each', async () => {
    const t0 = Date.now();
    for (const a of agents) process.kill(a.pid, 'SIGKILL');
    await waitFor(() => names.every((n) => fleet.alerts(n).some((a) => a.kind === 'slave_recovered')), 120_000, 'every slave recovered');
    const recoveredMs = Date.now() - t0;
    // Sweeps keep running: a recovery wrongly counted as failed would redeploy within the backoff (≤ 1 s).
    await new Promise((r) => setTimeout(r, 5000));

    const deploys = names.map((n) => fleet.db().deploys.list('storm', n));
    // eslint-disable-next-line no-console
    console.log(`${N} slaves killed at once: all recovered in ${(recoveredMs / 1000).toFixed(1)} s with ${deploys.flat().length} deploys`);
    for (const [i, d] of deploys.entries()) {
      expect({ slave: names[i], deploys: d.map((x) => `${x.reason}:${x.status}`) }).toEqual({ slave: names[i], deploys: ['dead:ok'] });
    }
    const log = daemon.log();
    // The breaker did open during the deploys (so the test exercises the open-breaker path).
    expect(fleet.db().slaves.history('storm', 's0', 500).some((h) => /circuit breaker open/.test(h.error ?? ''))).toBe(true);
    expect(log).not.toMatch(/recovery attempt \d+ failed/);
    for (const n of names) {
      expect(fleet.slave(n)?.state).toBe('healthy');
      const kinds = fleet.alerts(n).map((a) => a.kind);
      expect(kinds.filter((k) => k === 'slave_dead')).toHaveLength(1);
      expect(kinds.filter((k) => k === 'slave_recovered')).toHaveLength(1);
      expect(kinds.indexOf('slave_dead')).toBeLessThan(kinds.indexOf('slave_recovered'));
      expect(kinds).not.toContain('recovery_failed');
    }
  });
});
