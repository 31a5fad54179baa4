/**
 * Real agents on loopback report different commits of a real git history; one `d8 master --once`
 * sweep classifies them, and `d8 status` (text and --json) shows it from the store.
 */
import crypto from 'crypto';
import { Fleet, freePort } from './master-support/fleet';

describe('d8 master: classification of real agents', () => {
  const fleet = new Fleet();
  const names = ['equal', 'behind', 'ahead', 'diverged', 'foreign', 'down'];
  let ports: Record<string, number>;

  beforeAll(async () => {
    ports = {};
    for (const n of names) ports[n] = await freePort();
    const c = fleet.initRepo(names.map((n) => ({ name: n, port: ports[n] })), { autoUpdate: 'off' });
    await fleet.agent('equal', ports.equal, c.main, { D8_SUPERVISOR: 'setsid' });
    await fleet.agent('behind', ports.behind, c.base, { D8_SUPERVISOR: 'user-unit' });
    await fleet.agent('ahead', ports.ahead, c.ahead);
    await fleet.agent('diverged', ports.diverged, c.side);
    await fleet.agent('foreign', ports.foreign, crypto.randomBytes(20).toString('hex'));
  });
  afterAll(() => fleet.cleanup());

  it('classifies equal, behind, ahead, diverged, unknown and an unreachable slave', async () => {
    const r = await fleet.cli(['master', '--stack', 'test', '--repo', fleet.repo, '--once', '--engine', 'direct', '--deployer-module', require.resolve('./master-support/spawn-deployer.js')]);
    expect(r.stderr).not.toContain(fleet.token);
    expect(r.code).toBe(0);
    const st = await fleet.cli(['status', '--stack', 'test', '--repo', fleet.repo, '--json']);
    expect(st.code).toBe(0);
    const json = JSON.parse(st.stdout) as { master: { commit: string }; slaves: Array<{ name: string; state: string; drift: string; commit: string | null; strategy: string | null; last_seen: string | null; last_error: string | null }> };
    expect(json.master.commit).toBe(fleet.commits.main);
    const by = Object.fromEntries(json.slaves.map((s) => [s.name, s]));
    expect(by.equal).toMatchObject({ state: 'healthy', drift: 'equal', commit: fleet.commits.main, strategy: 'native', supervisor: 'setsid', reboot_safe: false });
    expect(by.behind).toMatchObject({ state: 'version_mismatch', drift: 'behind', commit: fleet.commits.base, supervisor: 'user-unit', reboot_safe: true });
    expect(by.ahead).toMatchObject({ supervisor: null, reboot_safe: null }); // started by hand
    expect(by.ahead).toMatchObject({ state: 'version_mismatch', drift: 'ahead', commit: fleet.commits.ahead });
    expect(by.diverged).toMatchObject({ state: 'version_mismatch', drift: 'diverged' });
    expect(by.foreign).toMatchObject({ state: 'version_mismatch', drift: 'unknown' });
    expect(by.down).toMatchObject({ state: 'pending', drift: 'unknown', last_seen: null });
    expect(by.down.last_error).toMatch(/ECONNREFUSED/);
    expect(by.equal.last_seen).not.toBeNull();

    const text = await fleet.cli(['status', '--stack', 'test', '--repo', fleet.repo]);
    expect(text.stdout).toContain(`master ${fleet.commits.main.slice(0, 7)}`);
    expect(text.stdout).toContain(`[≠ ${fleet.commits.base.slice(0, 7)} behind]`);
    expect(text.stdout).toContain(`[≠ ${fleet.commits.ahead.slice(0, 7)} ahead]`);
    expect(text.stdout).toMatch(/ equal .*native\s+setsid \(not reboot-safe\)/);
    expect(text.stdout).toMatch(/ behind .*native\s+user-unit /);

    // Mismatches alert once each; ahead/diverged also ask a human (never a downgrade).
    const kinds = fleet.alerts().map((a) => `${a.kind}:${a.slave}`);
    for (const n of ['behind', 'ahead', 'diverged', 'foreign']) expect(kinds.filter((k) => k === `version_mismatch:${n}`)).toHaveLength(1);
    const reqs = fleet.db().requests.list();
    expect(reqs.map((q) => q.action?.slave).sort()).toEqual(['ahead', 'diverged']);
    expect(fleet.db().deploys.list('test')).toHaveLength(0);
  });
});
