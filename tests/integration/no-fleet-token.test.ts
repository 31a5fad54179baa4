/**
 * A master with per-slave tokens only (no d8:agentToken, no D8_AGENT_TOKEN; issue 13): the running
 * daemon installs two `host: local` agents with the real direct deployer and install.sh, each with
 * its own token; `d8 exec` on a named slave and on whichever fits (`--any`, the task router),
 * `d8 rotate-token --all` and `d8 bootstrap-script` all work, and nothing asks for a fleet token.
 */
import fs from 'fs';
import path from 'path';
import { Fleet, execStatus, freePort, waitFor, stopAgentsUnder } from './master-support/fleet';

jest.setTimeout(400_000);

describe('a master without a fleet token', () => {
  const fleet = new Fleet();
  const slaveHome = path.join(fleet.root, 'slave-home');
  const ports: Record<string, number> = {};
  const noFleetToken = { D8_AGENT_TOKEN: '' };
  let daemon: ReturnType<Fleet['daemon']>;
  const record = (s: string) => fleet.tokenRecord(s);
  const exec = (s: string, token: string) => execStatus(ports[s], token);
  const cli = ([command, ...args]: string[]) => fleet.cli([command, '--stack', 'test', ...args], noFleetToken);

  beforeAll(async () => {
    ports.a = await freePort();
    ports.b = await freePort();
    fs.mkdirSync(slaveHome);
    fleet.initCheckoutRepo([{ name: 'a', port: ports.a }, { name: 'b', port: ports.b }], { installAttempts: 1, installDelaySeconds: 0 });
    daemon = fleet.daemon({ env: { HOME: slaveHome, ...noFleetToken }, tuning: { deadAfter: 2, settleMs: 60_000 }, realDeployer: true });
  });

  afterAll(async () => {
    await stopAgentsUnder(slaveHome);
    await fleet.cleanup();
  });

  it('deploys each slave with its own token, runs commands on a named slave and on any, and rotates', async () => {
    for (const s of ['a', 'b']) await waitFor(() => fleet.slave(s)?.state === 'healthy', 240_000, `${s} installed (log: ${path.join(fleet.root, 'daemon-0.log')})`, 500);
    await waitFor(() => record('a').installed && record('b').installed, 30_000, 'tokens marked installed');
    const before = { a: record('a'), b: record('b') };
    expect(await exec('a', before.a.current)).toBe(200);
    expect(await exec('b', before.a.current)).toBe(401);

    const named = await cli(['exec', 'a', '--repo', fleet.repo, '--', 'echo', 'from-a']);
    expect({ code: named.code, out: named.stdout, err: named.stderr }).toEqual({ code: 0, out: 'from-a\n', err: '' });
    const any = await cli(['exec', '--any', '--repo', fleet.repo, '--', 'echo', 'from-any']);
    expect({ code: any.code, out: any.stdout }).toEqual({ code: 0, out: 'from-any\n' });

    const rotated = await cli(['rotate-token', '--all', '--dir', fleet.repo, '--json']);
    expect({ code: rotated.code, err: rotated.stderr }).toEqual({ code: 0, err: '' });
    expect(JSON.parse(rotated.stdout)).toEqual([
      { slave: 'a', ok: true, replaced: 'slave', error: null }, { slave: 'b', ok: true, replaced: 'slave', error: null },
    ]);
    for (const s of ['a', 'b'] as const) {
      expect(await exec(s, before[s].current)).toBe(401);
      expect(await exec(s, record(s).current)).toBe(200);
    }
    const again = await cli(['exec', '--any', '--repo', fleet.repo, '--', 'echo', 'after-rotation']);
    expect({ code: again.code, out: again.stdout }).toEqual({ code: 0, out: 'after-rotation\n' });
    expect(daemon.log()).not.toMatch(/agent token unusable|d8:agentToken/);
  });

  it('bootstrap-script embeds the slave\'s own token, not a fleet token', async () => {
    const file = path.join(fleet.root, 'install-b.sh');
    const r = await cli(['bootstrap-script', 'b', '--dir', fleet.repo, '-o', file]);
    expect({ code: r.code, out: r.stdout }).toEqual({ code: 0, out: `${file}\n` });
    const script = fs.readFileSync(file, 'utf8');
    expect(script).toContain(record('b').current);
    expect(script).not.toContain(record('a').current);
    expect(r.stderr).not.toContain(record('b').current);
  });
});
