/**
 * A token per slave, end to end on `host: local` slaves: the running daemon installs two agents with
 * the real direct deployer and install.sh (native, temp HOME), each with its own token (0600 in
 * D8_HOME/tokens); one slave's token is refused (401) by the other, and the fleet token by both.
 * `d8 rotate-token` under the running master (1-second checks) while `d8 exec` runs in a loop: no
 * check fails, no command is refused; afterwards only the new token opens the agent, also after a
 * restart (the agent kept it in its token file).
 */
import fs from 'fs';
import path from 'path';
import { Fleet, execStatus, freePort, waitFor, sleep, stopAgentsUnder } from './master-support/fleet';
import { httpRequest } from '../support/agent-process';

jest.setTimeout(400_000);

describe('a token per slave, rotated under a running master', () => {
  const fleet = new Fleet();
  const slaveHome = path.join(fleet.root, 'slave-home');
  const ports: Record<string, number> = {};
  let daemon: ReturnType<Fleet['daemon']>;
  const record = (s: string) => fleet.tokenRecord(s);
  const exec = (s: string, token: string) => execStatus(ports[s], token);

  beforeAll(async () => {
    ports.a = await freePort();
    ports.b = await freePort();
    fs.mkdirSync(slaveHome);
    fleet.initCheckoutRepo([{ name: 'a', port: ports.a }, { name: 'b', port: ports.b }], { installAttempts: 1, installDelaySeconds: 0 });
    daemon = fleet.daemon({ env: { HOME: slaveHome }, tuning: { deadAfter: 2, settleMs: 60_000 }, realDeployer: true });
  });

  afterAll(async () => {
    await stopAgentsUnder(slaveHome);
    await fleet.cleanup();
  });

  it('each deployed slave gets its own token (0600); A\'s token and the fleet token are refused by B', async () => {
    for (const s of ['a', 'b']) await waitFor(() => fleet.slave(s)?.state === 'healthy', 240_000, `${s} installed (log: ${path.join(fleet.root, 'daemon-0.log')})`, 500);
    await waitFor(() => record('a').installed && record('b').installed, 30_000, 'tokens marked installed');
    const a = record('a');
    const b = record('b');
    expect(a.current).not.toBe(b.current);
    expect([a.current, b.current]).not.toContain(fleet.token);
    for (const s of ['a', 'b']) expect(fs.statSync(path.join(fleet.home, 'tokens', 'test', `${s}.json`)).mode & 0o777).toBe(0o600);
    expect(await exec('a', a.current)).toBe(200);
    expect(await exec('b', b.current)).toBe(200);
    expect(await exec('b', a.current)).toBe(401);
    expect(await exec('a', b.current)).toBe(401);
    expect(await exec('a', fleet.token)).toBe(401);
    // The master presents each slave's own token.
    const r = await fleet.cli(['exec', 'b', '--stack', 'test', '--repo', fleet.repo, '--', 'echo', 'from-b']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('from-b');
    // So does the task router (`--any`), although the fleet token is set: both agents refuse it.
    const any = await fleet.cli(['exec', '--any', '--stack', 'test', '--repo', fleet.repo, '--', 'echo', 'from-any']);
    expect({ code: any.code, out: any.stdout }).toEqual({ code: 0, out: 'from-any\n' });
    expect(daemon.log()).not.toContain(a.current);
  });

  it('rotate-token under 1-second checks while commands run: no failed check, no refused command; then only the new token works, also after a restart', async () => {
    const before = { a: record('a'), b: record('b') };
    const checksBefore = { a: fleet.db().slaves.history('test', 'a', 200).length, b: fleet.db().slaves.history('test', 'b', 200).length };
    const t0 = new Date().toISOString();
    let stop = false;
    const results: Array<{ code: number | null; out: string }> = [];
    const loop = async (slave: string) => {
      while (!stop) {
        const r = await fleet.cli(['exec', slave, '--stack', 'test', '--repo', fleet.repo, '--', 'echo', 'still-here']);
        results.push({ code: r.code, out: r.stdout + r.stderr });
      }
    };
    const loops = [loop('a'), loop('b'), loop('a')];
    await sleep(2000);
    const rotations = [
      await fleet.cli(['rotate-token', 'a', '--stack', 'test', '--dir', fleet.repo]),
      await fleet.cli(['rotate-token', '--all', '--stack', 'test', '--dir', fleet.repo, '--json']),
      await fleet.cli(['rotate-token', 'b', '--stack', 'test', '--dir', fleet.repo]),
    ];
    await sleep(3000);
    stop = true;
    await Promise.all(loops);
    for (const r of rotations) expect({ code: r.code, err: r.stderr }).toEqual({ code: 0, err: '' });
    expect(rotations[0].stdout).toBe('a: rotated (new token of its own)\n');
    expect(JSON.parse(rotations[1].stdout)).toEqual([
      { slave: 'a', ok: true, replaced: 'slave', error: null }, { slave: 'b', ok: true, replaced: 'slave', error: null },
    ]);
    expect(results.length).toBeGreaterThan(6);
    expect(results.filter((r) => r.code !== 0 || !r.out.includes('still-here'))).toEqual([]);
    for (const s of ['a', 'b'] as const) {
      const checks = fleet.db().slaves.history('test', s, 200).filter((c) => c.at >= t0);
      expect(checks.length).toBeGreaterThan(3);
      expect(checks.filter((c) => !c.ok)).toEqual([]);
      expect(fleet.db().slaves.history('test', s, 200).length).toBeGreaterThan(checksBefore[s]);
    }
    const after = { a: record('a'), b: record('b') };
    for (const s of ['a', 'b'] as const) {
      expect(after[s]).toMatchObject({ previous: null, installed: true });
      expect(after[s].current).not.toBe(before[s].current);
      expect(await exec(s, before[s].current)).toBe(401);
      expect(await exec(s, after[s].current)).toBe(200);
    }
    // The agent keeps only the new token in its file: a restart still accepts it, and only it.
    const restart = await httpRequest({ port: ports.a, method: 'POST', path: '/api/restart', headers: { Authorization: `Bearer ${after.a.current}` } });
    expect(restart.status).toBe(202);
    await sleep(1500);
    await waitFor(async () => (await exec('a', after.a.current).catch(() => 0)) === 200, 30_000, 'a back after the restart', 200);
    expect(await exec('a', before.a.current)).toBe(401);
    expect(daemon.log()).not.toContain(after.a.current);
  });
});
