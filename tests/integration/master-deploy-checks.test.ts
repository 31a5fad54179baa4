/**
 * Issue 23, defect 9: a fresh deploy was followed by a spurious failed check (`healthy -> pending
 * (ECONNRESET)` 0.4 s after the first healthy). A real master with the real direct deployer installs a
 * real agent on `host: local` (real install.sh under a temp HOME); its check history must show no
 * failure after the new agent's first healthy check, for a fresh install and for a redeploy over the
 * running agent.
 */
import path from 'path';
import { Fleet, waitFor } from './master-support/fleet';
import { localInstallFleet } from './master-support/local-install-fleet';

jest.setTimeout(400_000);

/**
 * Checks whose retries span seconds (attempts about 0, 3 and 9 s after a check starts), so that a
 * sweep's check is in flight while the deploy ends: what it then reports must not land after the
 * deploy's own verified check.
 */
const SLOW_CHECKS = { deadAfter: 3, settleMs: 60_000, checkAttempts: 3, retryDelayMs: 1500, attemptTimeoutMs: 1000, checkDeadlineMs: 15_000 };

/** Checks recorded at or after the first ok check reporting `commit`, oldest first. */
function checksSinceFirstHealthy(fleet: Fleet, commit: string): Array<{ at: string; ok: boolean; error: string | null; commit: string | null }> {
  const history = fleet.db().slaves.history(fleet.stack, 'local', 1000).reverse();
  const first = history.findIndex((c) => c.ok && c.commit === commit);
  return first < 0 ? [] : history.slice(first);
}

describe('checks around a real deploy (host local, real install.sh)', () => {
  // The dev stack, as `npm start` runs it: its local slave is deployed as soon as it is missing.
  const { fleet, slaveHome, head: headOf } = localInstallFleet('dev');

  it('records no failed check after the first healthy one, after a fresh install and after a redeploy', async () => {
    fleet.daemon({ env: { HOME: slaveHome }, tuning: SLOW_CHECKS, realDeployer: true });
    const log = path.join(fleet.root, 'daemon-0.log');
    await waitFor(() => checksSinceFirstHealthy(fleet, headOf()).length > 0, 240_000, `the first install (log: ${log})`, 200);
    await waitFor(() => fleet.db().deploys.list(fleet.stack, 'local').find((r) => r.status !== 'running'), 60_000, 'the deploy to finish');
    // Ten checks after the first healthy one (1 s interval): the spurious failure came within the first.
    const fresh = await waitFor(() => { const c = checksSinceFirstHealthy(fleet, headOf()); return c.length >= 10 ? c : null; }, 60_000, 'ten checks after the install', 200);
    expect(fresh.filter((c) => !c.ok)).toEqual([]);
    expect(fleet.db().deploys.list(fleet.stack, 'local')).toHaveLength(1);

    // A new commit on main: the master redeploys over the running agent.
    const next = fleet.commitOnMain();
    await waitFor(() => checksSinceFirstHealthy(fleet, next).length > 0, 240_000, `the redeploy (log: ${log})`, 200);
    const again = await waitFor(() => { const c = checksSinceFirstHealthy(fleet, next); return c.length >= 10 ? c : null; }, 60_000, 'ten checks after the redeploy', 200);
    expect(again.filter((c) => !c.ok)).toEqual([]);
  });
});
