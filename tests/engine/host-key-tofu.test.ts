/**
 * Trust on first use on the pulumi engine (`d8 up --engine pulumi`, the real CLI and engine) against
 * a real sshd whose host key the test regenerates: the first up records the key and the program
 * passes it to the command provider as the connection's hostKey (read back from the stack's state);
 * a changed key fails with kind host_key and both fingerprints before the engine runs; `d8 trust
 * --yes` records the new key and the next up pins it and goes through. The install gets the
 * slave's own token (never in clear in the state); the fleet token is refused by that agent.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { LocalWorkspace, PulumiCommand } from '@pulumi/pulumi/automation';
import type { BundleInfo } from '../../agent/bundle/build';
import type { DeployResult } from '../../core/deploy-result';
import { DEPLOY_EXIT_CODES } from '../../cli/exit-codes';
import { describeTier } from '../support/tier';
import { BASE_IMAGE, freePort, randomToken, REPO, uninstallAsUser, upTestHosts, type TestHosts } from '../system/support/hosts';
import { OwnSshd } from '../system/support/own-sshd';
import { httpRequest } from '../support/agent-process';

function listFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? listFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]);
}
import { createFleetProject, engineEnv, engineHostsTier, releaseBundles, runD8, writeStackFile, type CliRun, type FleetProject } from './support/fleet-project';
import { commandProviderLabel, localBackendEnv, pulumiToolchain } from './support/toolchain';

jest.setTimeout(10 * 60_000);

const STACK = 'tofu';


describeTier(engineHostsTier, `SSH host keys on the pulumi engine: first use recorded and pinned, a change refused until d8 trust (${commandProviderLabel()})`, () => {
  let th: TestHosts;
  let work: string;
  let backendDir: string;
  let project: FleetProject;
  let bundle: BundleInfo;
  let env: Record<string, string>;
  let sshd: OwnSshd;
  let agentPort: number;
  let knownHosts: string;
  let fp1: string;

  const d8 = (args: string[]): Promise<CliRun> => runD8(args, { cwd: project.dir, env });
  const up = (...extra: string[]) => d8(['up', '--stack', STACK, '--dir', project.dir, '--engine', 'pulumi', '--json', ...extra]);
  const result = (r: CliRun): DeployResult => {
    try {
      return (JSON.parse(r.stdout) as DeployResult[])[0];
    } catch {
      throw new Error(`d8 up exited ${r.code} without JSON:\n${r.stderr.slice(-4000)}`);
    }
  };
  /** The host key the slave's resources were given, as the program reports it in the state (a component output). */
  const pinnedKey = async (): Promise<unknown> => {
    const toolchain = pulumiToolchain();
    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(toolchain.binDir) });
    const stack = await LocalWorkspace.selectStack({ stackName: STACK, workDir: project.dir }, { pulumiCommand, envVars: env });
    const dep = (await stack.exportStack()).deployment as { resources: Array<{ type: string; outputs?: { hostKey?: unknown } }> };
    return dep.resources.find((r) => r.type === 'd8:fleet:SlaveHost')?.outputs?.hostKey;
  };

  beforeAll(async () => {
    th = upTestHosts();
    agentPort = await freePort();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-engine-tofu-'));
    sshd = new OwnSshd(th.hosts.venv, await freePort(), path.join(work, 'sshd'));
    await sshd.start();
    const backend = localBackendEnv('d8-engine-tofu-backend-');
    backendDir = backend.dir;
    project = createFleetProject(path.join(work, 'project'));
    ({ old: bundle } = await releaseBundles(project, path.join(work, 'bundles')));
    writeStackFile(project.dir, STACK, {
      sshKeyPath: th.key, installAttempts: 1, installDelaySeconds: 1, baseImage: BASE_IMAGE, nodeDistUrl: 'http://127.0.0.1:9/no-mirror',
      slaves: [{ name: 'reinstalled', host: th.hosts.venv.host, user: th.hosts.venv.user, sshPort: sshd.port, agentPort, strategies: ['venv'] }],
    });
    env = engineEnv(pulumiToolchain().env, backend.env);
    fs.mkdirSync(path.join(work, 'tmp'));
    Object.assign(env, { D8_HOME: path.join(work, 'd8-home'), D8_AGENT_TOKEN: randomToken(), D8_BUNDLE_DIR: bundle.dir, TMPDIR: path.join(work, 'tmp'), D8_LOG_LEVEL: 'info' });
    delete env.D8_SSH_PRIVATE_KEY;
    delete env.D8_SSH_KEY_PATH;
    knownHosts = path.join(work, 'd8-home', 'known_hosts');
  });

  afterAll(async () => {
    await sshd?.stop();
    if (th) uninstallAsUser(REPO, th.hosts.venv.user, agentPort);
    if (work) fs.rmSync(work, { recursive: true, force: true });
    if (backendDir) fs.rmSync(backendDir, { recursive: true, force: true });
  });

  it('the first up records the host key, says so, and the program pins it on every remote resource', async () => {
    fp1 = sshd.fingerprint();
    const r = await up();
    const res = result(r);
    expect(res.error).toBeNull();
    expect(res).toMatchObject({ engine: 'pulumi', status: 'deployed', strategy: 'venv' });
    expect(r.stderr).toContain(`reinstalled: first connection to ${th.hosts.venv.host}:${sshd.port}: recorded its SSH host key ssh-ed25519 ${fp1}`);
    expect(fs.readFileSync(knownHosts, 'utf8')).toBe(`[${th.hosts.venv.host}]:${sshd.port} ${sshd.publicKey()} reinstalled\n`);
    expect(await pinnedKey()).toBe(sshd.publicKey());
    // The install got the slave's own token (a secret in the state, never in clear), not the fleet token.
    const rec = JSON.parse(fs.readFileSync(path.join(work, 'd8-home', 'tokens', STACK, 'reinstalled.json'), 'utf8')) as { current: string; installed: boolean };
    expect(rec.installed).toBe(true);
    const exec = (token: string) => httpRequest({ host: th.hosts.venv.host, port: agentPort, method: 'POST', path: '/api/execute', headers: { Authorization: `Bearer ${token}` }, body: { command: 'true', kind: 'shell' } });
    expect((await exec(rec.current)).status).toBe(200);
    expect((await exec(env.D8_AGENT_TOKEN)).status).toBe(401);
    const leaked = listFiles(backendDir).filter((f) => fs.readFileSync(f, 'utf8').includes(rec.current));
    expect(leaked).toEqual([]);
  });

  it('a changed host key fails with kind host_key, both fingerprints and the fix, before the engine runs', async () => {
    await sshd.restartWithNewKey();
    const fp2 = sshd.fingerprint();
    const r = await up('--force');
    const res = result(r);
    expect(r.code).toBe(DEPLOY_EXIT_CODES.host_key);
    expect(res).toMatchObject({ engine: 'pulumi', status: 'failed', errorKind: 'host_key', attempts: [] });
    expect(res.error).toContain(`recorded ssh-ed25519 ${fp1}`);
    expect(res.error).toContain(`the host now offers ${fp2}`);
    expect(res.error).toContain('`d8 trust reinstalled`');
  });

  it('`d8 trust --yes` records the new key; the next up pins it and goes through', async () => {
    const t = await d8(['trust', 'reinstalled', '--stack', STACK, '--dir', project.dir, '--yes', '--json']);
    expect(t.code).toBe(0);
    expect(JSON.parse(t.stdout)).toMatchObject({ outcome: 'replaced', recorded: `ssh-ed25519 ${fp1}`, offered: `ssh-ed25519 ${sshd.fingerprint()}` });
    const r = await up('--force');
    const res = result(r);
    expect(res.error).toBeNull();
    expect(res).toMatchObject({ status: 'deployed', strategy: 'venv' });
    expect(await pinnedKey()).toBe(sshd.publicKey());
  });

  it('d8 rotate-token --all on the pulumi path: the agent takes the new token, the next up gives it the same one from the state (a secret), the old one stays refused', async () => {
    const tokenFile = path.join(work, 'd8-home', 'tokens', STACK, 'reinstalled.json');
    const read = () => JSON.parse(fs.readFileSync(tokenFile, 'utf8')) as { current: string; previous: string | null; installed: boolean };
    const exec = async (token: string) => (await httpRequest({ host: th.hosts.venv.host, port: agentPort, method: 'POST', path: '/api/execute', headers: { Authorization: `Bearer ${token}` }, body: { command: 'true', kind: 'shell' } })).status;
    const before = read().current;
    const rot = await d8(['rotate-token', '--all', '--stack', STACK, '--dir', project.dir, '--json']);
    expect({ code: rot.code, err: rot.stderr }).toEqual({ code: 0, err: '' });
    expect(JSON.parse(rot.stdout)).toEqual([{ slave: 'reinstalled', ok: true, replaced: 'slave', error: null }]);
    const after = read();
    expect(after).toMatchObject({ previous: null, installed: true });
    expect(after.current).not.toBe(before);
    expect(await exec(before)).toBe(401);
    expect(await exec(after.current)).toBe(200);
    // The state still holds the old token: the next up sees the changed secret and installs the new one.
    const res = result(await up());
    expect(res.error).toBeNull();
    expect(res).toMatchObject({ engine: 'pulumi', status: 'deployed', strategy: 'venv' });
    expect(read()).toMatchObject({ current: after.current, previous: null, installed: true });
    expect(await exec(after.current)).toBe(200);
    expect(await exec(before)).toBe(401);
    expect(await exec(env.D8_AGENT_TOKEN)).toBe(401);
    expect(listFiles(backendDir).filter((f) => fs.readFileSync(f, 'utf8').includes(after.current))).toEqual([]);
  });
});
