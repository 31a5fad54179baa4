/**
 * Issue 13 on a real sshd test host: `d8 up` (direct engine) runs install.sh over SSH; the agent
 * makes its key pair on the host (key 0600 in ~/.d8-agent/tls-PORT), the install result carries the
 * certificate's fingerprint, the master records it, and the master's first check (its agent client
 * with the store's pins) speaks HTTPS and gets exactly that certificate. A redeploy keeps the pair (the
 * pin stays valid); a full uninstall removes it.
 * The stack file lives in the checkout for the run, under a random name, removed afterwards.
 */
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import tls from 'tls';
import { AgentClient } from '../../master/agent-client';
import { openStore } from '../../master/store';
import { runD8, type Run } from '../support/run-process';
import { describeTier } from '../support/tier';
import { freePort, randomToken, REPO, oneSlaveStack, systemTier, tempDir, uninstallAsUser, upTestHosts, type TestHost } from './support/hosts';

jest.setTimeout(10 * 60 * 1000);

const FP = /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/;

function presentedFingerprint(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, rejectUnauthorized: false }, () => { resolve(s.getPeerCertificate().fingerprint256); s.destroy(); });
    s.on('error', reject);
  });
}

describeTier(systemTier, 'the agent speaks TLS, pinned by the master (real SSH host)', () => {
  let host: TestHost;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let port: number;
  const stack = `tls-${crypto.randomBytes(4).toString('hex')}`;
  const stackFile = path.join(REPO, `Pulumi.${stack}.yaml`);
  const up = (args: string[] = []): Promise<Run> => runD8(REPO, ['up', '--stack', stack, '--engine', 'direct', '--force', '--json', ...args], env);
  const tlsDir = (): string => path.join(host.home, '.d8-agent', `tls-${port}`);
  const recorded = (): string | null => {
    const store = openStore(path.join(dir, 'home', 'master.db'));
    try { return store.pins.get(stack, 'box'); } finally { store.close(); }
  };

  beforeAll(async () => {
    if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: build first (npx tsc -p tsconfig.json)');
    const th = upTestHosts();
    host = th.hosts.venv;
    dir = tempDir('d8-systest-tls-');
    port = await freePort();
    fs.writeFileSync(stackFile, oneSlaveStack(th.key, host, port));
    env = { ...process.env, D8_HOME: path.join(dir, 'home'), D8_AGENT_TOKEN: randomToken(), D8_SSH_KEY_PATH: '', D8_SSH_PRIVATE_KEY: '' };
  });

  afterAll(() => {
    fs.rmSync(stackFile, { force: true });
    if (host) uninstallAsUser(REPO, host.user, port);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the install reports the fingerprint of a key pair made on the host; the master records it and its first HTTPS check gets that certificate', async () => {
    const r = await up();
    expect(r.code).toBe(0);
    const [result] = JSON.parse(r.stdout) as Array<{ ok: boolean; tlsFingerprint?: string }>;
    expect(result.ok).toBe(true);
    expect(result.tlsFingerprint).toMatch(FP);
    const fp = result.tlsFingerprint!;
    expect(r.stderr).toContain(`certificate pinned: sha256 ${fp}`);
    // Made on the host, key private to the agent's user, the fingerprint beside it.
    expect(fs.statSync(path.join(tlsDir(), 'agent-key.pem')).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(tlsDir(), 'agent-cert.sha256'), 'utf8').trim()).toBe(fp);
    expect(new crypto.X509Certificate(fs.readFileSync(path.join(tlsDir(), 'agent-cert.pem'))).fingerprint256).toBe(fp);
    expect(recorded()).toBe(fp);
    // The agent serves that certificate.
    expect(await presentedFingerprint(host.host, port)).toBe(fp);
    // The master's check: HTTPS with the recorded pin.
    const store = openStore(path.join(dir, 'home', 'master.db'));
    const client = new AgentClient({ pins: store.pins.lookup(stack) });
    try {
      const h = await client.health({ name: 'box', agentHost: host.host, agentPort: port });
      expect(h.ok && h.health.install_strategy).toBe('venv');
      // And a different pin for the same address is refused as an impersonation, not a dead agent.
      const other = await client.health({ agentHost: host.host, agentPort: port, tlsFingerprint: fp.replace(/^../, fp.startsWith('00') ? '11' : '00') });
      expect(!other.ok && other.pinMismatch).toMatchObject({ presented: fp });
    } finally {
      client.close();
      store.close();
    }
  });

  it('a redeploy keeps the key pair (the pin stays valid); a full uninstall removes it', async () => {
    const before = recorded();
    const r = await up();
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as Array<{ tlsFingerprint?: string }>)[0].tlsFingerprint).toBe(before);
    expect(recorded()).toBe(before);
    expect(await presentedFingerprint(host.host, port)).toBe(before);
    uninstallAsUser(REPO, host.user, port);
    expect(fs.existsSync(tlsDir())).toBe(false);
  });
});
