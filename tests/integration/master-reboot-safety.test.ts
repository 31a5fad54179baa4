/**
 * A slave that will not survive a reboot gets ONE warning: a real `d8 master` checks real agents that
 * report their supervisor (D8_SUPERVISOR, as the installer sets it). An agent under setsid alone raises
 * `not_reboot_safe` on the first check that sees it, not again on later sweeps, not again when it dies
 * and comes back the same way, and again only after it was reboot-safe in between. Agents under a
 * reboot-safe supervisor, or started by hand (no supervisor), raise none.
 */
import { Fleet, freePort, waitFor, sleep } from './master-support/fleet';
import type { AgentHandle } from '../support/agent-process';

jest.setTimeout(180_000);

describe('the not-reboot-safe warning (real master, real agents)', () => {
  const fleet = new Fleet();
  let daemon: ReturnType<Fleet['daemon']>;
  let fragile: AgentHandle;
  let ports: Record<'fragile' | 'sturdy' | 'handmade', number>;
  const warnings = (slave: string) => fleet.alerts(slave).filter((a) => a.kind === 'not_reboot_safe');
  /** Waits until the daemon has checked `slave` n more times. */
  const sweeps = async (slave: string, n: number): Promise<void> => {
    let seen = fleet.slave(slave)?.last_check;
    let left = n;
    await waitFor(() => {
      const at = fleet.slave(slave)?.last_check;
      if (at !== seen) { seen = at; left--; }
      return left <= 0;
    }, 30_000, `${n} more checks of ${slave}`);
  };

  beforeAll(async () => {
    ports = { fragile: await freePort(), sturdy: await freePort(), handmade: await freePort() };
    const c = fleet.initRepo(Object.entries(ports).map(([name, port]) => ({ name, port, autoUpdate: 'off' as const })));
    fragile = await fleet.agent('fragile', ports.fragile, c.main, { D8_SUPERVISOR: 'setsid' });
    await fleet.agent('sturdy', ports.sturdy, c.main, { D8_SUPERVISOR: 'cron' });
    await fleet.agent('handmade', ports.handmade, c.main);
    // deadAfter high: a stopped agent stays pending, so the daemon's recovery does not replace ours.
    daemon = fleet.daemon({ tuning: { deadAfter: 1000 } });
  });
  afterAll(() => fleet.cleanup());

  it('warns once about a setsid agent, naming the supervisor and the agent', async () => {
    await waitFor(() => fleet.slave('fragile')?.state === 'healthy' && fleet.slave('sturdy')?.state === 'healthy' && fleet.slave('handmade')?.state === 'healthy', 60_000, 'all healthy');
    await sweeps('fragile', 4);
    expect(warnings('fragile')).toHaveLength(1);
    expect(warnings('fragile')[0]).toMatchObject({ slave: 'fragile', stack: 'test', data: { supervisor: 'setsid', strategy: 'native', endpoint: `127.0.0.1:${ports.fragile}` } });
    expect(fleet.slave('fragile')).toMatchObject({ supervisor: 'setsid', reboot_safe: false });
    expect(warnings('sturdy')).toEqual([]);
    expect(warnings('handmade')).toEqual([]);
    expect(fleet.slave('sturdy')).toMatchObject({ supervisor: 'cron', reboot_safe: true });
    // Delivered through the log notifier with its headline.
    await waitFor(() => daemon.log().includes('fragile will not come back after a reboot: its agent runs under setsid only'), 30_000, 'the headline in the log');
  });

  const restartAs = async (supervisor: string): Promise<void> => {
    await fragile.stop();
    await waitFor(() => fleet.slave('fragile')?.state === 'pending', 30_000, 'fragile pending');
    fragile = await fleet.agent('fragile', ports.fragile, fleet.commits.main, { D8_SUPERVISOR: supervisor });
    await waitFor(() => fleet.slave('fragile')?.state === 'healthy', 30_000, 'fragile healthy again');
    await sweeps('fragile', 3);
  };

  it('a slave that dies and comes back under setsid again is not warned again', async () => {
    await restartAs('setsid');
    expect(warnings('fragile')).toHaveLength(1);
  });

  it('becoming reboot-safe and then losing it warns again, once', async () => {
    await restartAs('user-unit');
    expect(fleet.slave('fragile')).toMatchObject({ supervisor: 'user-unit', reboot_safe: true });
    expect(warnings('fragile')).toHaveLength(1);
    await restartAs('setsid');
    await sleep(1500);
    expect(warnings('fragile')).toHaveLength(2);
    expect(warnings('sturdy')).toEqual([]);
    expect(warnings('handmade')).toEqual([]);
  });
});
