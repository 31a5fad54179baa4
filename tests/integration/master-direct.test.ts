/**
 * The daemon with the REAL direct deployer on `host: local`: the real bundle (built from a copy of
 * this checkout, committed in a temp git repo) installed by the real install.sh (native strategy,
 * under a temp HOME). A killed agent goes pending -> dead and the daemon redeploys it.
 */
import fs from 'fs';
import path from 'path';
import { waitFor, pidsUnder } from './master-support/fleet';
import { localInstallFleet } from './master-support/local-install-fleet';

jest.setTimeout(300_000);

describe('d8 master with the real direct deployer (host local)', () => {
  const { fleet, slaveHome, head: headOf } = localInstallFleet();

  it('installs the missing slave, then recovers it after its agent is killed', async () => {
    const env = { HOME: slaveHome };
    const d = fleet.daemon({ env, tuning: { deadAfter: 2, settleMs: 60_000 }, realDeployer: true });
    await waitFor(() => fleet.slave('local')?.state === 'healthy', 240_000, `the first install (log: ${path.join(fleet.root, 'daemon-0.log')})`, 500);
    expect(fleet.slave('local')).toMatchObject({ commit: headOf(), drift: 'equal', strategy: 'native' });
    const first = await waitFor(() => fleet.db().deploys.list('test', 'local').find((r) => r.status !== 'running'), 60_000, 'the deploy to finish');
    expect(first).toMatchObject({ engine: 'direct', status: 'ok', strategy: 'native' });
    expect(fs.readFileSync(first.build_log_path!, 'utf8')).not.toContain(fleet.token);

    await waitFor(() => fleet.alerts('local').some((a) => a.kind === 'slave_recovered'), 30_000, 'the first recovery alert');
    const before = fleet.alerts('local').length;
    const agents = pidsUnder(slaveHome);
    expect(agents.length).toBeGreaterThan(0);
    for (const p of agents) process.kill(p, 'SIGKILL');
    const seen = new Set<string>();
    await waitFor(() => { seen.add(fleet.slave('local')?.state ?? ''); return seen.has('dead'); }, 60_000, 'dead', 100);
    expect(seen.has('pending')).toBe(true);
    await waitFor(() => fleet.slave('local')?.state === 'healthy', 240_000, 'recovered', 500);
    const kinds = fleet.alerts('local').slice(before).map((a) => a.kind);
    expect(kinds.filter((k) => k === 'slave_dead')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'slave_recovered')).toHaveLength(1);
    const last = await waitFor(() => { const r = fleet.db().deploys.list('test', 'local')[0]; return r.status !== 'running' && r; }, 60_000, 'the redeploy to finish');
    expect(last).toMatchObject({ engine: 'direct', status: 'ok', reason: 'dead' });
    expect(d.log()).not.toContain(fleet.token);
  });
});
