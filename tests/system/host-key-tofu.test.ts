/**
 * Trust on first use on the direct engine, through the `d8` CLI against a real sshd whose host key
 * the test regenerates (a reinstalled host): the first deploy records the key in D8_HOME/known_hosts
 * and says so with its fingerprint; after the key changes, a deploy fails with kind host_key (exit
 * 13) naming the slave, both fingerprints (as ssh-keygen prints them) and `d8 trust`, and runs
 * nothing on the host; `d8 trust` without a terminal refuses, `--yes` accepts, and the deploy passes.
 */
import fs from 'fs';
import path from 'path';
import YAML from 'yaml';
import type { DeployResult } from '../../core/deploy-result';
import { DEPLOY_EXIT_CODES } from '../../cli/exit-codes';
import { runD8, type Run } from '../support/run-process';
import { describeTier } from '../support/tier';
import { agentPids, freePort, randomToken, REPO, systemTier, tempDir, uninstallAsUser, upTestHosts, type TestHosts } from './support/hosts';
import { OwnSshd } from './support/own-sshd';

jest.setTimeout(5 * 60 * 1000);

describeTier(systemTier, 'SSH host keys: trust on first use, a changed key refused until `d8 trust` (direct engine)', () => {
  let th: TestHosts;
  let dir: string;
  let sshd: OwnSshd;
  let agentPort: number;
  let env: NodeJS.ProcessEnv;
  let knownHosts: string;
  let fp1: string;

  const d8 = (...args: string[]): Promise<Run> => runD8(REPO, args, env);
  const up = (...extra: string[]) => d8('up', '--stack', 'tofu', '--dir', dir, '--engine', 'direct', '--json', ...extra);
  const result = (r: Run): DeployResult => {
    try {
      return (JSON.parse(r.stdout) as DeployResult[])[0];
    } catch {
      throw new Error(`d8 up exited ${r.code} without JSON:\n${r.stderr.slice(-3000)}`);
    }
  };

  beforeAll(async () => {
    th = upTestHosts();
    dir = tempDir('d8-systest-tofu-');
    agentPort = await freePort();
    sshd = new OwnSshd(th.hosts.venv, await freePort(), path.join(dir, 'sshd'));
    await sshd.start();
    fs.writeFileSync(path.join(dir, 'Pulumi.tofu.yaml'), YAML.stringify({
      config: {
        'd8:slaves': [{ name: 'reinstalled', host: th.hosts.venv.host, user: th.hosts.venv.user, sshPort: sshd.port, agentPort, strategies: ['venv'] }],
        'd8:sshKeyPath': th.key,
        'd8:installAttempts': 1,
        'd8:nodeDistUrl': 'http://127.0.0.1:9/no-mirror',
      },
    }));
    knownHosts = path.join(dir, 'home', 'known_hosts');
    env = { ...process.env, D8_HOME: path.join(dir, 'home'), D8_AGENT_TOKEN: randomToken(), D8_LOG_LEVEL: 'info' };
    delete env.D8_SSH_KEY_PATH;
    delete env.D8_SSH_PRIVATE_KEY;
  });
  afterAll(async () => {
    await sshd?.stop();
    if (th) uninstallAsUser(REPO, th.hosts.venv.user, agentPort);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the first deploy records the host key (0600, OpenSSH format) and says so with its SHA256 fingerprint', async () => {
    fp1 = sshd.fingerprint();
    expect(fs.existsSync(knownHosts)).toBe(false);
    const r = await up();
    const res = result(r);
    expect(res.error).toBeNull();
    expect(res).toMatchObject({ status: 'deployed', strategy: 'venv' });
    expect(r.stderr).toContain(`reinstalled: first connection to ${th.hosts.venv.host}:${sshd.port}: recorded its SSH host key ssh-ed25519 ${fp1}`);
    expect(fs.readFileSync(knownHosts, 'utf8')).toBe(`[${th.hosts.venv.host}]:${sshd.port} ${sshd.publicKey()} reinstalled\n`);
    expect(fs.statSync(knownHosts).mode & 0o777).toBe(0o600);
    const log = fs.readFileSync(res.buildLogPath!, 'utf8');
    expect(log).toContain(fp1);
  });

  it('the same key again: the next deploy connects without recording anything new', async () => {
    const before = fs.readFileSync(knownHosts, 'utf8');
    const r = await up('--force');
    expect(result(r)).toMatchObject({ status: 'deployed', errorKind: null });
    expect(r.stderr).not.toContain('first connection');
    expect(fs.readFileSync(knownHosts, 'utf8')).toBe(before);
  });

  it('after the host key changes, a deploy fails with kind host_key naming the slave, both fingerprints and the fix, and runs nothing', async () => {
    const pids = agentPids(th.hosts.venv.user, agentPort);
    expect(pids).toHaveLength(1);
    const before = fs.readFileSync(knownHosts, 'utf8');
    await sshd.restartWithNewKey();
    const fp2 = sshd.fingerprint();
    expect(fp2).not.toBe(fp1);
    const r = await up('--force');
    const res = result(r);
    expect(r.code).toBe(DEPLOY_EXIT_CODES.host_key);
    expect(res).toMatchObject({ status: 'failed', errorKind: 'host_key', attempts: [] });
    expect(res.error).toContain(`reinstalled: the SSH host key of ${th.hosts.venv.host}:${sshd.port} CHANGED: recorded ssh-ed25519 ${fp1}`);
    expect(res.error).toContain(`the host now offers ${fp2}`);
    expect(res.error).toContain('`d8 trust reinstalled`');
    expect(fs.readFileSync(knownHosts, 'utf8')).toBe(before);
    // The running agent was not touched: same process.
    expect(agentPids(th.hosts.venv.user, agentPort)).toEqual(pids);
  });

  it('`d8 trust` shows both fingerprints; without a terminal and without --yes it changes nothing', async () => {
    const before = fs.readFileSync(knownHosts, 'utf8');
    const r = await d8('trust', 'reinstalled', '--stack', 'tofu', '--dir', dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`recorded  ssh-ed25519 ${fp1}`);
    expect(r.stdout).toContain(`offered   ssh-ed25519 ${sshd.fingerprint()}`);
    expect(r.stderr).toContain('pass --yes');
    expect(fs.readFileSync(knownHosts, 'utf8')).toBe(before);
  });

  it('`d8 trust --yes` records the new key, and the deploy goes through', async () => {
    const fp2 = sshd.fingerprint();
    const t = await d8('trust', 'reinstalled', '--stack', 'tofu', '--dir', dir, '--yes', '--json');
    expect(t.code).toBe(0);
    expect(JSON.parse(t.stdout)).toMatchObject({
      slave: 'reinstalled', port: sshd.port, recorded: `ssh-ed25519 ${fp1}`, offered: `ssh-ed25519 ${fp2}`, outcome: 'replaced', known_hosts: knownHosts,
    });
    expect(fs.readFileSync(knownHosts, 'utf8')).toBe(`[${th.hosts.venv.host}]:${sshd.port} ${sshd.publicKey()} reinstalled\n`);
    const r = await up('--force');
    const res = result(r);
    expect(res.error).toBeNull();
    expect(res).toMatchObject({ status: 'deployed', strategy: 'venv' });
    const again = await d8('trust', 'reinstalled', '--stack', 'tofu', '--dir', dir, '--json');
    expect(JSON.parse(again.stdout)).toMatchObject({ outcome: 'unchanged' });
  });
});
