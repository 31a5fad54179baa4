/**
 * `hostKey` on the direct path against the real sshd test hosts: a known_hosts line and the key
 * alone both let the deploy in; a wrong key is refused before anything runs, naming the slave and
 * both SHA256 fingerprints (as `ssh-keygen -lf` prints them, computed here without our parser).
 */
import { execFileSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { buildBundle, type BundleInfo } from '../../agent/bundle/build';
import { DirectDeployer } from '../../master/deploy/direct';
import { SshShell } from '../../master/deploy/direct/shell';
import { describeTier } from '../support/tier';
import { fleetConfig, freePort, REPO, systemTier, tempDir, uninstallAsUser, upTestHosts, type TestHost, type TestHosts } from './support/hosts';

jest.setTimeout(5 * 60 * 1000);

/** `SHA256:…` of an authorized_keys-style line, from ssh-keygen. */
function keygenFingerprint(dir: string, keyLine: string): string {
  const f = path.join(dir, `fp-${Date.now()}-${Math.random().toString(36).slice(2)}.pub`);
  fs.writeFileSync(f, `${keyLine}\n`);
  const out = execFileSync('ssh-keygen', ['-lf', f], { encoding: 'utf8' });
  const m = /(SHA256:[A-Za-z0-9+/]+)/.exec(out);
  if (!m) throw new Error(`ssh-keygen -lf printed no SHA256 fingerprint: ${out}`);
  return m[1];
}

describeTier(systemTier, 'hostKey on the direct deployer (real sshd)', () => {
  let th: TestHosts;
  let dir: string;
  let bundle: BundleInfo;
  const ports: Array<{ user: string; port: number }> = [];

  beforeAll(async () => {
    th = upTestHosts();
    dir = tempDir('d8-systest-hostkey-');
    bundle = await buildBundle({ outRoot: path.join(dir, 'bundles') });
  });
  afterAll(() => {
    for (const p of ports) uninstallAsUser(REPO, p.user, p.port);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const connect = (h: TestHost, hostKey: string) => SshShell.connect({
    name: 'hk', host: h.host, port: h.port, user: h.user, privateKey: fs.readFileSync(th.key, 'utf8'), keyDescription: th.key, hostKey,
  });

  it('the key alone (`ssh-ed25519 AAAA…`) and a known_hosts line (`HOST ssh-ed25519 AAAA… comment`) both connect', async () => {
    const h = th.hosts.venv;
    expect(h.hostKey).toMatch(/^ssh-ed25519 AAAA\S+$/);
    for (const hostKey of [h.hostKey, `${h.host} ${h.hostKey} root@test-host`, `[${h.host}]:${h.port} ${h.hostKey}`]) {
      const shell = await connect(h, hostKey);
      try {
        expect((await shell.exec('id -un')).stdout.trim()).toBe(h.user);
      } finally {
        await shell.close();
      }
    }
  });

  it('a deploy with a known_hosts line as hostKey installs the agent', async () => {
    const h = th.hosts.venv;
    const port = await freePort();
    ports.push({ user: h.user, port });
    const config = fleetConfig(th, [{ name: 'kh', host: { ...h, hostKey: `${h.host} ${h.hostKey}` }, agentPort: port, strategies: ['venv'] }]);
    const r = await new DirectDeployer({ config, bundle, env: { ...process.env, D8_HOME: path.join(dir, 'home') } })
      .deploy(config.slaves[0], { reason: 'systest', force: true });
    expect(r.error).toBeNull();
    expect(r).toMatchObject({ status: 'deployed', strategy: 'venv', commit: bundle.versionInfo.commit, errorKind: null });
  });

  it('a wrong host key fails with kind host_key, naming the slave, the expected and the offered fingerprints', async () => {
    const h = th.hosts.venv;
    const wrong = th.hosts.native.hostKey;
    const expected = keygenFingerprint(dir, wrong);
    const offered = keygenFingerprint(dir, h.hostKey);
    expect(expected).not.toBe(offered);
    const config = fleetConfig(th, [{ name: 'pc-salon', host: { ...h, hostKey: `${h.host} ${wrong}` }, agentPort: await freePort() }]);
    const r = await new DirectDeployer({ config, bundle, env: { ...process.env, D8_HOME: path.join(dir, 'home') } })
      .deploy(config.slaves[0], { reason: 'systest', force: true });
    expect(r).toMatchObject({ ok: false, status: 'failed', errorKind: 'host_key', attempts: [] });
    expect(r.error).toContain('pc-salon: ');
    expect(r.error).toContain(`expected ssh-ed25519 ${expected}`);
    expect(r.error).toContain(`offered ${offered}`);
  });

  it('a hostKey that is not a key is a config error naming the slave and the fix', async () => {
    const config = fleetConfig(th, [{ name: 'typo', host: { ...th.hosts.venv, hostKey: 'SHA256:abcdef' }, agentPort: await freePort() }]);
    const r = await new DirectDeployer({ config, bundle, env: { ...process.env, D8_HOME: path.join(dir, 'home') } })
      .deploy(config.slaves[0], { reason: 'systest', force: true });
    expect(r).toMatchObject({ ok: false, errorKind: 'config' });
    expect(r.error).toMatch(/^typo: hostKey is not a public host key .*fix hostKey of typo in the stack config$/);
  });
});
