/**
 * A person's answer holds (issue 10, defect 1): with a real `d8 master` and real agents, a rejected
 * update request, a rejected request about a slave ahead of the master, and an approved update that
 * then failed are not filed (or redeployed) again sweep after sweep; a new master commit asks anew,
 * and `d8 update` still updates a slave whose request was rejected.
 */
import { Fleet, freePort, waitFor, sleep } from './master-support/fleet';
import type { HumanRequest } from '../../core/requests';

jest.setTimeout(240_000);

describe('d8 master: answered requests are not asked again (real processes)', () => {
  const fleet = new Fleet('answers');
  let daemon: ReturnType<Fleet['daemon']>;

  beforeAll(async () => {
    const specs = [
      { name: 'gated', port: await freePort(), autoUpdate: 'approve' as const },
      { name: 'forward', port: await freePort() },
      { name: 'failing', port: await freePort(), autoUpdate: 'approve' as const },
    ];
    const c = fleet.initRepo(specs);
    await fleet.agent('gated', specs[0].port, c.base);
    await fleet.agent('forward', specs[1].port, c.ahead);
    await fleet.agent('failing', specs[2].port, c.base);
    daemon = fleet.daemon({ env: { D8_TEST_DEPLOY_FAIL: 'failing' } });
  });
  afterAll(() => fleet.cleanup());

  /** The slave's requests, oldest first (lists are newest first). */
  const requestsFor = (slave: string): HumanRequest[] => fleet.db().requests.list().filter((r) => r.action?.slave === slave).reverse();
  const announced = (slave: string): number => fleet.alerts(slave).filter((a) => a.kind === 'human_request').length;
  const lastCheck = (slave: string): string => fleet.slave(slave)?.last_check ?? '';

  /** Rejects every open request of `slaves` as soon as it appears, for `sweeps` sweeps of the daemon. */
  async function keepRejecting(slaves: string[], sweeps: number): Promise<number> {
    let rejections = 0;
    let seenSweeps = 0;
    let last = lastCheck(slaves[0]);
    while (seenSweeps < sweeps) {
      for (const s of slaves) {
        for (const r of requestsFor(s).filter((x) => x.status === 'PENDING')) {
          const out = await fleet.cli(['requests', 'reject', r.id, 'not now']);
          expect(out.code).toBe(0);
          rejections++;
        }
      }
      const now = lastCheck(slaves[0]);
      if (now !== last) { seenSweeps++; last = now; }
      await sleep(200);
    }
    return rejections;
  }

  it('a rejected update request (approve policy) and a rejected "ahead" request stay answered over many sweeps', async () => {
    await waitFor(() => requestsFor('gated').length > 0 && requestsFor('forward').length > 0, 60_000, 'both requests filed');
    const rejections = await keepRejecting(['gated', 'forward'], 8);
    expect(rejections).toBe(2);
    for (const s of ['gated', 'forward']) {
      expect(requestsFor(s)).toHaveLength(1);
      expect(requestsFor(s)[0].status).toBe('REJECTED');
      expect(announced(s)).toBe(1);
    }
    expect(requestsFor('gated')[0].action?.target_commit).toBe(fleet.commits.main);
    expect(fleet.db().deploys.list('answers', 'gated')).toHaveLength(0);
    expect(fleet.slave('gated')?.commit).toBe(fleet.commits.base);
  });

  it('an approved update that then failed is neither redeployed nor asked again every sweep', async () => {
    const [req] = requestsFor('failing');
    expect((await fleet.cli(['requests', 'approve', req.id])).code).toBe(0);
    await waitFor(() => fleet.db().requests.get(req.id).status === 'COMPLETED', 60_000, 'the approved request completed');
    expect(fleet.db().requests.get(req.id).notes).toMatch(/failed:/);
    const t0 = lastCheck('failing');
    await waitFor(() => fleet.db().slaves.history('answers', 'failing', 200).filter((h) => h.at > t0).length >= 6, 60_000, 'six more sweeps');
    expect(requestsFor('failing')).toHaveLength(1);
    expect(fleet.db().deploys.list('answers', 'failing')).toHaveLength(1);
    expect(fleet.alerts('failing').filter((a) => a.kind === 'update_failed')).toHaveLength(1);
  });

  it('a new master commit asks again; `d8 update` still updates the slave whose request was rejected', async () => {
    const next = fleet.commitOnMain();
    await waitFor(() => requestsFor('gated').length === 2 && requestsFor('failing').length === 2 && requestsFor('forward').length === 2, 60_000, 'new requests for the new commit');
    expect(requestsFor('gated')[1]).toMatchObject({ status: 'PENDING', action: { target_commit: next } });
    expect(announced('gated')).toBe(2);
    const up = await fleet.cli(['update', 'gated', '--stack', 'answers', '--repo', fleet.repo, '--json']);
    expect(up.code).toBe(0);
    expect(JSON.parse(up.stdout)).toMatchObject({ ok: true, commit: next });
    expect(daemon.log()).not.toContain(fleet.token);
  });
});
