/** What a deploy says when it cannot get in: a host that is down, a wrong key, a wrong host key. */
import { execFileSync } from 'child_process';
import fs from 'fs';
import net from 'net';
import path from 'path';
import { buildBundle, type BundleInfo } from '../../agent/bundle/build';
import { DirectDeployer } from '../../master/deploy/direct';
import type { FleetConfig } from '../../core/stack-config';
import { describeTier } from '../support/tier';
import { fleetConfig, freePort, readAll, systemTier, tempDir, upTestHosts, type TestHosts } from './support/hosts';

jest.setTimeout(5 * 60 * 1000);

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

describeTier(systemTier, 'direct deployer: connection failures', () => {
  let th: TestHosts;
  let bundle: BundleInfo;
  let dir: string;
  let d8Home: string;

  beforeAll(async () => {
    th = upTestHosts();
    dir = tempDir('d8-systest-errors-');
    d8Home = path.join(dir, 'home');
    bundle = await buildBundle({ outRoot: path.join(dir, 'bundles') });
  });
  afterAll(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

  const deployer = (config: FleetConfig): DirectDeployer =>
    new DirectDeployer({ config, bundle, env: { ...process.env, D8_HOME: d8Home }, connectTimeoutMs: 20000 });

  it('a host that is down fails fast with a clear error and a build log', async () => {
    const down = { ...th.hosts.venv, host: '127.0.0.19' };
    expect(await listening(down.host, down.port)).toBe(false);
    const config = fleetConfig(th, [{ name: 'gone', host: down, agentPort: await freePort() }]);
    const r = await deployer(config).deploy(config.slaves[0], { reason: 'systest', force: true });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/gone: cannot reach 127\.0\.0\.19:2222 over SSH: connection refused \(is the host up, sshd running, and sshPort right\?\)/);
    // Refused is answered at once: far below the 20 s handshake timeout configured above.
    expect(r.durationMs).toBeLessThan(10000);
    const log = JSON.parse(fs.readFileSync(r.buildLogPath!, 'utf8'));
    expect(log).toMatchObject({ slave_id: 'gone', slave_host: '127.0.0.19', status: 'failed' });
    expect(log.commands.at(-1)).toMatchObject({ success: false, stderr: expect.stringMatching(/connection refused/) });
  });

  it('a key the host does not accept fails with a clear error naming the key', async () => {
    const wrongKey = path.join(dir, 'wrong_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey]);
    const config = fleetConfig(th, [{ name: 'venv', host: th.hosts.venv, agentPort: await freePort() }], { sshKeyPath: wrongKey });
    const r = await deployer(config).deploy(config.slaves[0], { reason: 'systest', force: true });
    expect(r.ok).toBe(false);
    expect(r.error).toContain(`SSH login as d8-venv@${th.hosts.venv.host}:${th.hosts.venv.port} was rejected: the key ${wrongKey} is not authorized for d8-venv`);
    const logs = readAll(path.join(d8Home, 'build_logs'));
    expect(logs).not.toContain(fs.readFileSync(wrongKey, 'utf8').split('\n')[1]);
    expect(logs).not.toContain(config.agentToken!);
  });

  it('a host key that does not match the configured one is refused before anything runs', async () => {
    const config = fleetConfig(th, [{ name: 'venv', host: { ...th.hosts.venv, hostKey: th.hosts.native.hostKey }, agentPort: await freePort() }]);
    const r = await deployer(config).deploy(config.slaves[0], { reason: 'systest', force: true });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/the SSH host key of 127\.0\.0\.12:2222 does not match the configured hostKey/);
    expect(r.attempts).toEqual([]);
  });

  // The fleet token is optional (each slave gets its own), but one that is set must not be weak.
  it('a weak fleet token is a clear error before connecting', async () => {
    const config = { ...fleetConfig(th, [{ name: 'venv', host: th.hosts.venv, agentPort: await freePort() }]), agentToken: 'changeme' };
    const r = await deployer(config).deploy(config.slaves[0], { reason: 'systest', force: true });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/agent token unusable \(the token is only 8 characters; .*\): set the secret d8:agentToken .* or D8_AGENT_TOKEN/);
    expect(r.attempts).toEqual([]);
  });
});
