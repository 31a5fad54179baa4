/**
 * A docker-strategy agent rotates its token (issue 13): the real docker SSH test host gets an agent
 * container from `d8 up --engine direct`; under the real daemon (1-second checks) `d8 rotate-token`
 * runs while `d8 exec` runs in a loop: no check fails, no command is refused; the old token is then
 * refused, and after `docker restart` of the container the new token (and only it) still opens the
 * agent: the container kept it in the host's token file, which stays the SSH user's, mode 0600.
 * Runs bin/d8.js (dist/): build first.
 */
import { execFileSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { openStore } from '../../master/store';
import { runD8, type Run } from '../support/run-process';
import { describeTier } from '../support/tier';
import { httpRequest, sleep, waitFor } from '../support/agent-process';
import { containersForPort, freePort, randomToken, REPO, systemTier, uninstallAsUser, upTestHosts, type TestHost } from './support/hosts';
import { CheckoutStack } from './support/checkout-stack';

jest.setTimeout(10 * 60 * 1000);

interface Rec { current: string; previous: string | null; installed: boolean }

describeTier(systemTier, 'token rotation of a docker-strategy agent', () => {
  let host: TestHost;
  let port: number;
  const run = new CheckoutStack('rc-dockrot');
  const { stack } = run;
  const fleetToken = randomToken();
  const env = run.env(fleetToken);
  const d8 = (args: string[]): Promise<Run> => runD8(REPO, args, env);
  const record = (): Rec => JSON.parse(fs.readFileSync(path.join(run.home, 'tokens', stack, 'box.json'), 'utf8')) as Rec;
  const exec = (token: string) => httpRequest({
    host: host.host, port, method: 'POST', path: '/api/execute', headers: { Authorization: `Bearer ${token}` }, body: { command: 'echo ok', kind: 'shell' },
  }).then((r) => r.status, () => 0);
  const hostTokenFile = (): string => path.join(host.home, '.d8-agent', `agent-token-${port}`);

  beforeAll(async () => {
    if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: build first (npx tsc -p tsconfig.json)');
    const th = upTestHosts();
    host = th.hosts.docker;
    port = await freePort();
    run.write(`  d8:sshKeyPath: ${th.key}
  d8:installDelaySeconds: 1
  d8:baseImage: d8-base:bookworm
  d8:dashboard: { enabled: false }
  d8:slaves:
    - { name: box, host: ${host.host}, user: ${host.user}, sshPort: ${host.port}, agentPort: ${port}, strategies: [docker] }
`);
  });

  afterAll(async () => {
    await run.stopDaemon();
    if (host) uninstallAsUser(REPO, host.user, port);
    await run.cleanup();
  });

  it('rotates under 1-second checks with commands running, and the new token survives a container restart', async () => {
    const up = await d8(['up', '--stack', stack, '--engine', 'direct', '--force']);
    expect({ code: up.code, err: up.code === 0 ? '' : up.stderr }).toEqual({ code: 0, err: '' });
    expect(up.stdout).toMatch(/box\s+deployed\s+docker\s/);
    const [container] = containersForPort(port);
    expect(container).toBe(`d8-agent-${port}`);
    const before = record();
    expect(before.installed).toBe(true);

    run.startDaemon(env);
    const db = openStore(path.join(run.home, 'master.db'));
    try {
      await waitFor(() => db.slaves.get(stack, 'box')?.state === 'healthy', 60_000, 'the daemon to see box healthy', 250);
      const t0 = new Date().toISOString();
      let stop = false;
      const results: Run[] = [];
      const loop = async (): Promise<void> => {
        while (!stop) results.push(await d8(['exec', 'box', '--stack', stack, '--', 'echo', 'still-here']));
      };
      const loops = [loop(), loop()];
      await sleep(2000);
      const rotations = [await d8(['rotate-token', 'box', '--stack', stack, '--dir', REPO]), await d8(['rotate-token', '--all', '--stack', stack, '--dir', REPO])];
      await sleep(3000);
      stop = true;
      await Promise.all(loops);
      for (const r of rotations) expect({ code: r.code, out: r.stdout, err: r.stderr }).toEqual({ code: 0, out: 'box: rotated (new token of its own)\n', err: '' });
      expect(results.length).toBeGreaterThan(4);
      expect(results.filter((r) => r.code !== 0 || !r.stdout.includes('still-here')).map((r) => r.stderr)).toEqual([]);
      const checks = db.slaves.history(stack, 'box', 500).filter((c) => c.at >= t0);
      expect(checks.length).toBeGreaterThan(3);
      expect(checks.filter((c) => !c.ok)).toEqual([]);
    } finally {
      db.close();
    }

    const after = record();
    expect(after).toMatchObject({ previous: null, installed: true });
    expect(after.current).not.toBe(before.current);
    expect(await exec(before.current)).toBe(401);
    expect(await exec(after.current)).toBe(200);
    // The container rewrote the host's file in place: still the SSH user's, 0600, only the new token.
    const st = fs.statSync(hostTokenFile());
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(Number(execFileSync('id', ['-u', host.user], { encoding: 'utf8' }).trim()));
    expect(fs.readFileSync(hostTokenFile(), 'utf8')).toBe(`${after.current}\n`);

    execFileSync('docker', ['restart', `d8-agent-${port}`], { stdio: 'ignore', timeout: 60_000 });
    await waitFor(async () => (await exec(after.current)) === 200, 60_000, 'the agent back after docker restart', 250);
    expect(await exec(before.current)).toBe(401);
    expect(await exec(fleetToken)).toBe(401);
    expect(run.readDaemonLog()).not.toContain(after.current);
  });
});
