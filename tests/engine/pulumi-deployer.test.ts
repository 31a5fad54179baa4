/**
 * `d8 up --engine pulumi` on the real engine, from a fresh file backend: a stack that was never
 * initialised is created; the result says deployed, up to date or failed from what the engine did,
 * with the installer's own strategy and attempts; a slave added to the stack file is created by a
 * targeted up; a new release keeps the venv (only `pulumi destroy` removes it); failures carry
 * their kind in the result and the exit status. Hosts: the SSH test hosts venv3 and venv2 (used by
 * nothing else under the heavy-tier lock but the bench).
 */
import { spawn } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { LocalWorkspace, PulumiCommand, type Stack } from '@pulumi/pulumi/automation';
import type { BundleInfo } from '../../agent/bundle/build';
import { repoRoot } from '../../core/paths';
import type { DeployResult } from '../../core/deploy-result';
import { DEPLOY_EXIT_CODES } from '../../cli/exit-codes';
import { openStore } from '../../master/store';
import { describeTier } from '../support/tier';
import { agentPids, BASE_IMAGE, freePort, randomToken, REPO, uninstallAsUser, upTestHosts, type TestHost, type TestHosts } from '../system/support/hosts';
import { ageHostBundles, createFleetProject, engineEnv, engineHostsTier, releaseBundles, writeStackFile, type FleetProject } from './support/fleet-project';
import { commandProviderLabel, localBackendEnv, pulumiToolchain } from './support/toolchain';

jest.setTimeout(10 * 60_000);

const STACK = 'fresh';
const D8_BIN = path.join(repoRoot(), 'bin', 'd8.js');


interface CliRun { code: number | null; stdout: string; stderr: string; ms: number }

describeTier(engineHostsTier, `d8 up --engine pulumi from a fresh backend (${commandProviderLabel()})`, () => {
  let th: TestHosts;
  let work: string;
  let backendDir: string;
  let project: FleetProject;
  let bundleOld: BundleInfo;
  let bundleNew: BundleInfo;
  let env: Record<string, string>;
  let a: { host: TestHost; port: number };
  let b: { host: TestHost; port: number };
  const token = randomToken();
  const runs: Record<string, DeployResult> = {};
  const ms: Record<string, number> = {};

  const slaveEntry = (name: string, s: { host: TestHost; port: number }, hostKey = s.host.hostKey) => ({
    name, host: s.host.host, user: s.host.user, sshPort: s.host.port, agentPort: s.port, strategies: ['venv'], hostKey,
  });
  const stackFile = (slaves: Array<Record<string, unknown>>) => writeStackFile(project.dir, STACK, {
    sshKeyPath: th.key, installAttempts: 1, installDelaySeconds: 1, baseImage: BASE_IMAGE, slaves,
  });
  const venvInode = (h: TestHost): number | null => {
    try {
      return fs.statSync(path.join(h.home, '.d8-agent', 'venv')).ino;
    } catch {
      return null;
    }
  };

  function d8(args: string[], extra: Record<string, string | undefined> = {}): Promise<CliRun> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const e: Record<string, string> = { ...env };
      for (const [k, v] of Object.entries(extra)) if (v === undefined) delete e[k]; else e[k] = v;
      const child = spawn(process.execPath, [D8_BIN, ...args], { cwd: project.dir, env: e, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
    });
  }
  const up = (...args: string[]) => d8(['up', '--stack', STACK, '--dir', project.dir, '--engine', 'pulumi', '--json', ...args]);
  const results = (r: CliRun): DeployResult[] => {
    try {
      return JSON.parse(r.stdout) as DeployResult[];
    } catch {
      throw new Error(`d8 up exited ${r.code} without a JSON result:\n${r.stderr.slice(-4000)}`);
    }
  };
  const openStack = async (): Promise<Stack> => {
    const toolchain = pulumiToolchain();
    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(toolchain.binDir) });
    return LocalWorkspace.selectStack({ stackName: STACK, workDir: project.dir }, { pulumiCommand, envVars: env });
  };

  beforeAll(async () => {
    th = upTestHosts();
    // Only the bench uses these users: start from hosts without any D8 state (no venv to reuse).
    for (const h of [th.hosts.venv3, th.hosts.venv2]) uninstallAsUser(REPO, h.user);
    a = { host: th.hosts.venv3, port: await freePort() };
    b = { host: th.hosts.venv2, port: await freePort() };
    const toolchain = pulumiToolchain();
    const backend = localBackendEnv('d8-engine-fresh-backend-');
    backendDir = backend.dir;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-engine-fresh-'));
    project = createFleetProject(path.join(work, 'project'));
    ({ old: bundleOld, head: bundleNew } = await releaseBundles(project, path.join(work, 'bundles')));
    stackFile([slaveEntry('a', a)]);
    env = engineEnv(toolchain.env, backend.env);
    fs.mkdirSync(path.join(work, 'tmp'));
    Object.assign(env, { D8_HOME: path.join(work, 'd8-home'), D8_AGENT_TOKEN: token, D8_BUNDLE_DIR: bundleOld.dir, TMPDIR: path.join(work, 'tmp'), D8_LOG_LEVEL: 'warn' });
    delete env.D8_SSH_PRIVATE_KEY;
    delete env.D8_SSH_KEY_PATH;
  });

  afterAll(async () => {
    for (const h of [th?.hosts.venv3, th?.hosts.venv2]) if (h) uninstallAsUser(REPO, h.user);
    if (work) fs.rmSync(work, { recursive: true, force: true });
    if (backendDir) fs.rmSync(backendDir, { recursive: true, force: true });
  });

  it('a stack that was never initialised is created, and a new slave deployed: status, strategy and attempts are the installer\'s', async () => {
    const r = await up();
    const [res] = results(r);
    expect(res.error).toBeNull();
    expect(r.code).toBe(0);
    expect(res).toMatchObject({ slave: 'a', engine: 'pulumi', status: 'deployed', ok: true, strategy: 'venv', commit: project.old, errorKind: null });
    expect(res.attempts).toEqual([expect.objectContaining({ strategy: 'venv', attempt: 1, ok: true, exit_code: 0 })]);
    expect(venvInode(a.host)).not.toBeNull();
    // The installer's result (a command output of the stack) brought the agent's certificate back: recorded as its pin.
    expect(res.tlsFingerprint).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
    expect(fs.readFileSync(path.join(a.host.home, '.d8-agent', `tls-${a.port}`, 'agent-cert.sha256'), 'utf8').trim()).toBe(res.tlsFingerprint);
    const store = openStore(path.join(work, 'd8-home', 'master.db'));
    try { expect(store.pins.get(STACK, 'a')).toBe(res.tlsFingerprint); } finally { store.close(); }
    runs.first = res;
    ms.first = r.ms;
  });

  it('a second `d8 up` with nothing new is reported up to date and changes nothing on the host', async () => {
    const pids = agentPids(a.host.user, a.port);
    expect(pids).toHaveLength(1);
    const r = await up();
    const [res] = results(r);
    expect(r.code).toBe(0);
    expect(res).toMatchObject({ status: 'up_to_date', ok: true, strategy: 'venv', commit: project.old, attempts: [] });
    expect(agentPids(a.host.user, a.port)).toEqual(pids);
    const table = await d8(['up', '--stack', STACK, '--dir', project.dir, '--engine', 'pulumi']);
    expect(table.stdout).toMatch(/\ba\s+up to date\s+venv\s/);
  });

  it('a new release is deployed, keeps the venv (same inode) and installs well under the first time', async () => {
    const inode = venvInode(a.host);
    ageHostBundles(a.host.home);
    const r = await d8(['up', '--stack', STACK, '--dir', project.dir, '--engine', 'pulumi', '--json'], { D8_BUNDLE_DIR: bundleNew.dir });
    // Later tests deploy this release whatever this one finds.
    env.D8_BUNDLE_DIR = bundleNew.dir;
    const [res] = results(r);
    expect(res.error).toBeNull();
    expect(res).toMatchObject({ status: 'deployed', strategy: 'venv', commit: project.head });
    expect(venvInode(a.host)).toBe(inode);
    // A replace keeps the agent's key pair: the pin stays valid.
    expect(res.tlsFingerprint).toBe(runs.first.tlsFingerprint);
    // The installer's own clock: the first install built the venv, the second reused it.
    const first = runs.first.attempts[0].seconds;
    const second = res.attempts[0].seconds;
    process.stderr.write(`[engine] venv install: first release ${first}s (d8 up ${ms.first} ms), second ${second}s (d8 up ${r.ms} ms)\n`);
    expect(second).toBeLessThan(first * 0.6);
    // Old bundles do not pile up: install.sh removes those untouched for 10 minutes.
    expect(fs.readdirSync(path.join(a.host.home, '.d8-agent', 'bundles'))).toEqual([bundleNew.hash.slice(0, 16)]);
  });

  it('a slave added to the stack file gets a targeted create; the others are not touched', async () => {
    stackFile([slaveEntry('a', a), slaveEntry('b', b)]);
    const pidsA = agentPids(a.host.user, a.port);
    const r = await up('--slave', 'b');
    const [res] = results(r);
    expect(res.error).toBeNull();
    expect(res).toMatchObject({ slave: 'b', status: 'deployed', strategy: 'venv', commit: project.head });
    expect(agentPids(a.host.user, a.port)).toEqual(pidsA);
    const stack = await openStack();
    const last = (await stack.history())[0];
    expect(last.resourceChanges).toMatchObject({ create: 4 });
    expect(Object.keys(last.resourceChanges ?? {}).filter((k) => !['create', 'same'].includes(k))).toEqual([]);
  });

  it('a wrong host key fails with kind host_key and its exit status, naming both fingerprints', async () => {
    stackFile([slaveEntry('a', a), slaveEntry('b', b, th.hosts.native.hostKey)]);
    const r = await up('--slave', 'b', '--force');
    const [res] = results(r);
    expect(res).toMatchObject({ status: 'failed', ok: false, errorKind: 'host_key' });
    expect(res.error).toMatch(/^b: the SSH host key of 127\.0\.0\.15:\d+ does not match the configured hostKey: expected ssh-ed25519 SHA256:\S+, the host offered SHA256:\S+/);
    expect(r.code).toBe(DEPLOY_EXIT_CODES.host_key);
    stackFile([slaveEntry('a', a), slaveEntry('b', b)]);
  });

  it('a host where no configured strategy can work is refused by the probe before the engine runs: kind unsupported', async () => {
    // The venv2 user may not use docker: the probe says so, nothing is written to the host.
    const c = { host: b.host, port: await freePort() };
    stackFile([slaveEntry('a', a), slaveEntry('b', b), { ...slaveEntry('c', c), strategies: ['docker'] }]);
    const r = await up('--slave', 'c');
    const [res] = results(r);
    expect(res).toMatchObject({ slave: 'c', status: 'failed', ok: false, errorKind: 'unsupported', strategy: null, attempts: [] });
    expect(res.error).toMatch(/^c \(.*\): no strategy can work on this host, nothing was installed: docker: docker is not usable by /);
    expect(r.code).toBe(DEPLOY_EXIT_CODES.unsupported);
    stackFile([slaveEntry('a', a), slaveEntry('b', b)]);
  });

  it('an install where every strategy fails is kind install_failed, with the installer\'s attempts and its exit status', async () => {
    // On a's host, b's agent already answers on b's port (it listens on every address): install.sh refuses the port.
    const c = { host: a.host, port: b.port };
    stackFile([slaveEntry('a', a), slaveEntry('b', b), slaveEntry('c', c)]);
    const r = await up('--slave', 'c');
    const [res] = results(r);
    expect(res).toMatchObject({ slave: 'c', status: 'failed', ok: false, errorKind: 'install_failed', strategy: null });
    expect(res.attempts.length).toBeGreaterThan(0);
    expect(res.attempts.every((t) => t.strategy === 'venv' && !t.ok && /is already in use by a process this installer did not start/.test(t.stderr_tail))).toBe(true);
    expect(r.code).toBe(DEPLOY_EXIT_CODES.install_failed);
    stackFile([slaveEntry('a', a), slaveEntry('b', b)]);
  });

  it('with no backend to create the stack on, one line says exactly what to run', async () => {
    const home = fs.mkdtempSync(path.join(work, 'nohome-'));
    const r = await d8(['up', '--stack', STACK, '--dir', project.dir, '--engine', 'pulumi', '--json', '--slave', 'a'],
      { PULUMI_BACKEND_URL: undefined, PULUMI_ACCESS_TOKEN: undefined, HOME: home, PULUMI_HOME: path.join(home, '.pulumi-home') });
    const [res] = results(r);
    expect(res).toMatchObject({ status: 'failed', errorKind: 'config' });
    expect(res.error).toMatch(/^stack fresh: no Pulumi backend is logged in: run `pulumi login --local`/);
    expect(res.error).not.toContain('\n');
    expect(r.code).toBe(DEPLOY_EXIT_CODES.config);
  });

  it('`pulumi destroy` removes everything, the venv included', async () => {
    const stack = await openStack();
    const r = await stack.destroy({ onOutput: () => undefined });
    expect(r.summary.result).toBe('succeeded');
    for (const s of [a, b]) {
      expect(agentPids(s.host.user, s.port)).toEqual([]);
      expect(fs.existsSync(path.join(s.host.home, '.d8-agent'))).toBe(false);
    }
  });
});
