/**
 * The real engine end to end: the Pulumi CLI built from Go modules runs THIS repository's Pulumi
 * program (dist/infra via infra/index.js, in a throwaway project copy) on a local file backend against
 * the SSH test hosts (venv, native, docker). `up` deploys the fleet, a second `up` changes nothing, a
 * new commit redeploys, the master daemon with the pulumi deployer heals a `behind` slave with a
 * targeted up without touching the others, concurrent deploys are serialized, `destroy` uninstalls.
 * Needs: scripts/pulumi-toolchain.sh build, the system tier's hosts (root), and `npx tsc -p tsconfig.json`.
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { LocalWorkspace, PulumiCommand, type Stack, type UpResult } from '@pulumi/pulumi/automation';
import type { BundleInfo } from '../../agent/bundle/build';
import { repoRoot } from '../../core/paths';
import { loadFleetConfig, type SlaveConfig } from '../../core/stack-config';
import { DirectDeployer } from '../../master/deploy/direct';
import { probeInstalled } from '../support/agent-process';
import { slaveUrns } from '../../infra/urns';
import { describeTier } from '../support/tier';
import {
  agentPids, BASE_IMAGE, containersForPort, freePort, randomToken, upTestHosts, type TestHost, type TestHosts,
} from '../system/support/hosts';
import { ageHostBundles, createFleetProject, engineEnv, engineHostsTier, releaseBundles, uninstallPort, waitFor, writeStackFile, type FleetProject } from './support/fleet-project';
import { commandProviderLabel, localBackendEnv, pulumiToolchain } from './support/toolchain';

jest.setTimeout(10 * 60_000);

const STACK = 'e2e';
const D8_BIN = path.join(repoRoot(), 'bin', 'd8.js');


interface Box {
  name: string;
  host: TestHost;
  port: number;
  strategies: Array<'docker' | 'venv' | 'native'>;
  expect: 'docker' | 'venv' | 'native';
}

const quiet = { onOutput: () => undefined, color: 'never' as const };

function containerStartedAt(port: number): string[] {
  return containersForPort(port).map((c) =>
    spawnSync('docker', ['inspect', '--format', '{{.Id}} {{.State.StartedAt}}', c], { encoding: 'utf8' }).stdout.trim());
}

interface CliRun { code: number | null; stdout: string; stderr: string; started: number; ended: number }

describeTier(engineHostsTier, `the fleet program on the real Pulumi engine (${commandProviderLabel()})`, () => {
  let work: string;
  let backendDir: string;
  let project: FleetProject;
  let th: TestHosts;
  let boxes: Box[];
  let bundleOld: BundleInfo;
  let bundleNew: BundleInfo;
  let stack: Stack;
  let env: Record<string, string>;
  let master: ChildProcess | undefined;
  let destroyed = false;
  const token = randomToken();

  const health = async (b: Box) => {
    const p = await probeInstalled(b.host.host, b.port, 5000);
    return p.ok ? p.health : null;
  };
  const box = (name: string): Box => boxes.find((b) => b.name === name)!;
  const slaveResources = async (name: string): Promise<string[]> => {
    const urns = slaveUrns(STACK, name, { local: false });
    const d = (await stack.exportStack()).deployment as { resources: Array<{ urn: string }> };
    return d.resources.filter((r) => Object.values(urns).includes(r.urn)).map((r) => JSON.stringify(r));
  };

  function d8(args: string[], extra: Record<string, string> = {}): Promise<CliRun> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const child = spawn(process.execPath, [D8_BIN, ...args], { cwd: project.dir, env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr, started, ended: Date.now() }));
    });
  }

  beforeAll(async () => {
    th = upTestHosts();
    const toolchain = pulumiToolchain();
    const backend = localBackendEnv('d8-engine-fleet-backend-');
    backendDir = backend.dir;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-engine-fleet-'));
    project = createFleetProject(path.join(work, 'project'));

    ({ old: bundleOld, head: bundleNew } = await releaseBundles(project, path.join(work, 'bundles')));

    boxes = [
      { name: 'venv-box', host: th.hosts.venv, port: await freePort(), strategies: ['venv'], expect: 'venv' },
      { name: 'native-box', host: th.hosts.native, port: await freePort(), strategies: ['venv', 'native'], expect: 'native' },
      { name: 'docker-box', host: th.hosts.docker, port: await freePort(), strategies: ['docker'], expect: 'docker' },
    ];
    writeStackFile(project.dir, STACK, {
      sshKeyPath: th.key,
      installAttempts: 2,
      installDelaySeconds: 1,
      baseImage: BASE_IMAGE,
      autoUpdate: 'auto',
      slaves: boxes.map((b) => ({
        name: b.name, host: b.host.host, user: b.host.user, sshPort: b.host.port, agentPort: b.port, strategies: b.strategies, hostKey: b.host.hostKey,
      })),
    });

    env = engineEnv(toolchain.env, backend.env);
    // TMPDIR: the program stages bundle copies there (infra/bundle-stage.ts); removed with `work`.
    fs.mkdirSync(path.join(work, 'tmp'));
    Object.assign(env, { D8_HOME: path.join(work, 'd8-home'), D8_AGENT_TOKEN: token, D8_BUNDLE_DIR: bundleOld.dir, D8_LOG_LEVEL: 'info', TMPDIR: path.join(work, 'tmp') });
    delete env.D8_SSH_PRIVATE_KEY;
    delete env.D8_SSH_KEY_PATH;

    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(toolchain.binDir) });
    stack = await LocalWorkspace.createOrSelectStack({ stackName: STACK, workDir: project.dir }, { pulumiCommand, envVars: env });
  });

  afterAll(async () => {
    if (master && master.exitCode === null && master.signalCode === null) master.kill('SIGKILL');
    if (stack && !destroyed) await stack.destroy(quiet).catch(() => undefined);
    // Whatever a failed step left behind (only our ports: other tests use the same host users).
    for (const b of boxes ?? []) uninstallPort(b.host.user, b.port);
    if (stack) await stack.workspace.removeStack(STACK, { force: true }).catch(() => undefined);
    if (work) fs.rmSync(work, { recursive: true, force: true });
    if (backendDir) fs.rmSync(backendDir, { recursive: true, force: true });
  });

  let first: UpResult;

  it('`pulumi up` deploys the fleet: every agent reports the bundle\'s commit with the expected strategy', async () => {
    first = await stack.up(quiet);
    expect(first.summary.result).toBe('succeeded');
    // Stack + 3 × (component, state, bundle copy, install).
    expect(first.summary.resourceChanges).toEqual({ create: 13 });
    expect(first.outputs.commit.value).toBe(project.old);
    const slaves = first.outputs.slaves.value as Record<string, { endpoint: string; strategy: string; mode: string }>;
    for (const b of boxes) {
      // Every install here reports a certificate, so the endpoint is HTTPS.
      expect(slaves[b.name]).toEqual({ endpoint: `https://${b.host.host}:${b.port}`, strategy: b.expect, mode: 'ssh' });
      const h = await health(b);
      expect(h && { commit: h.commit, strategy: h.install_strategy }).toEqual({ commit: project.old, strategy: b.expect });
    }
  });

  it('a second `up` with no change changes nothing', async () => {
    const pids = agentPids(box('native-box').host.user, box('native-box').port);
    expect(pids).toHaveLength(1);
    const again = await stack.up(quiet);
    expect(again.summary.result).toBe('succeeded');
    expect(again.summary.resourceChanges).toEqual({ same: 13 });
    expect(agentPids(box('native-box').host.user, box('native-box').port)).toEqual(pids);
  });

  it('a new commit redeploys every slave (bundle copy and install replaced)', async () => {
    const pidsBefore = agentPids(box('venv-box').host.user, box('venv-box').port);
    stack.workspace.envVars.D8_BUNDLE_DIR = bundleNew.dir;
    for (const b of boxes) ageHostBundles(b.host.home);
    const up = await stack.up(quiet);
    expect(up.summary.result).toBe('succeeded');
    expect(up.summary.resourceChanges).toEqual({ same: 7, replace: 6 });
    expect(up.outputs.commit.value).toBe(project.head);
    for (const b of boxes) {
      const h = await health(b);
      expect(h && { commit: h.commit, strategy: h.install_strategy }).toEqual({ commit: project.head, strategy: b.expect });
    }
    const pidsAfter = agentPids(box('venv-box').host.user, box('venv-box').port);
    expect(pidsAfter).toHaveLength(1);
    expect(pidsAfter).not.toEqual(pidsBefore);
    // Old bundles do not pile up: install.sh removes those untouched for 10 minutes.
    const bundles = fs.readdirSync(path.join(box('native-box').host.home, '.d8-agent', 'bundles'));
    expect(bundles).toEqual([bundleNew.hash.slice(0, 16)]);
    // Nor do agent images: the replace kept the old one for reuse, the new install removed it.
    const images = spawnSync('docker', ['images', '--format', '{{.Tag}}', 'd8-agent'], { encoding: 'utf8' }).stdout.split('\n');
    expect(images).toContain(bundleNew.hash.slice(0, 16));
    expect(images).not.toContain(bundleOld.hash.slice(0, 16));
  });

  it('the master daemon (pulumi deployer) heals a `behind` slave with a targeted up and leaves the others alone', async () => {
    const venv = box('venv-box');
    const native = box('native-box');
    const docker = box('docker-box');
    // Drift Pulumi cannot see: the old release installed out of band (the direct deployer, same installer).
    const config = loadFleetConfig(project.dir, STACK, { D8_AGENT_TOKEN: token });
    const venvSlave = config.slaves.find((s) => s.name === venv.name) as SlaveConfig;
    const direct = new DirectDeployer({ config, bundle: bundleOld, env: { ...process.env, D8_HOME: path.join(work, 'direct-home') } });
    const drift = await direct.deploy(venvSlave, { force: true, reason: 'engine-test drift' });
    expect(drift).toMatchObject({ ok: true, commit: project.old });

    const othersBefore = { native: await slaveResources(native.name), docker: await slaveResources(docker.name) };
    const venvBefore = await slaveResources(venv.name);
    const nativePids = agentPids(native.host.user, native.port);
    const dockerContainers = containerStartedAt(docker.port);
    const uptimeBefore = { native: (await health(native))!.uptime_s, docker: (await health(docker))!.uptime_s, at: Date.now() };
    const historyBefore = (await stack.history()).length;

    const logFile = path.join(work, 'master.log');
    const out = fs.openSync(logFile, 'a');
    master = spawn(process.execPath, [D8_BIN, 'master', '--stack', STACK, '--repo', project.dir, '--engine', 'pulumi', '--interval', '2'], {
      cwd: project.dir,
      env: {
        ...env,
        D8_BUNDLE_DIR: bundleNew.dir,
        D8_MASTER_TUNING: JSON.stringify({ settleMs: 60_000, updateBackoffMs: 2000, controlPollMs: 200, attemptTimeoutMs: 2000, checkDeadlineMs: 5000, stopGraceMs: 120_000 }),
      },
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    const log = () => fs.readFileSync(logFile, 'utf8');
    try {
      await waitFor('venv-box to report the master\'s commit', async () => {
        if (master!.exitCode !== null) throw new Error(`the master exited (${master!.exitCode}):\n${log().slice(-4000)}`);
        const failed = log().split('\n').find((l) => l.includes('"alert":"update_failed"'));
        if (failed) throw new Error(`the master's deploy failed: ${(JSON.parse(failed) as { text: string }).text}`);
        const h = await health(venv);
        return h && h.commit === project.head ? h : null;
      }, 5 * 60_000, 1000);
      // The agent answers before `pulumi up` has finished: wait for the master's own verdict.
      await waitFor('the master to log the deploy result', async () => (log().includes(`deployed ${venv.name} (venv)`) ? true : null), 5 * 60_000, 500);
      // The master saw `behind` and deployed with the pulumi engine.
      expect(log()).toMatch(/behind/);
      expect(log()).toMatch(/"engine":"pulumi"/);
    } finally {
      master.kill('SIGTERM');
      await new Promise<void>((resolve) => {
        if (master!.exitCode !== null || master!.signalCode !== null) return resolve();
        master!.once('exit', () => resolve());
      });
    }

    // Exactly one new update, run by the master, replacing only venv-box's copy and install.
    const history = await stack.history();
    if (history.length !== historyBefore + 1) {
      throw new Error(`expected exactly one update by the master, found ${history.length - historyBefore}; master log:\n${log().slice(-6000)}`);
    }
    expect(history[0].message).toContain(venv.name);
    expect(history[0].result).toBe('succeeded');
    expect(history[0].resourceChanges).toMatchObject({ replace: 2 });
    expect(Object.keys(history[0].resourceChanges ?? {}).filter((k) => !['replace', 'same'].includes(k))).toEqual([]);
    expect(await slaveResources(native.name)).toEqual(othersBefore.native);
    expect(await slaveResources(docker.name)).toEqual(othersBefore.docker);
    expect(await slaveResources(venv.name)).not.toEqual(venvBefore);

    // The other agents never restarted.
    expect(agentPids(native.host.user, native.port)).toEqual(nativePids);
    expect(containerStartedAt(docker.port)).toEqual(dockerContainers);
    const elapsed = (Date.now() - uptimeBefore.at) / 1000;
    expect((await health(native))!.uptime_s).toBeGreaterThanOrEqual(uptimeBefore.native + elapsed - 2);
    expect((await health(docker))!.uptime_s).toBeGreaterThanOrEqual(uptimeBefore.docker + elapsed - 2);
    const h = await health(venv);
    expect(h && { commit: h.commit, strategy: h.install_strategy }).toEqual({ commit: project.head, strategy: 'venv' });
  });

  it('two concurrent deploys of one stack are serialized, not failed', async () => {
    const venv = box('venv-box');
    const native = box('native-box');
    const historyBefore = (await stack.history()).length;
    const args = (...slaves: string[]) => ['up', '--stack', STACK, '--dir', project.dir, '--engine', 'pulumi', '--json', '--slave', ...slaves];
    const extra = { D8_BUNDLE_DIR: bundleNew.dir };
    // One process deploys two slaves at once (serialized in-process); a second process deploys while
    // the first holds the stack lock (a ConcurrentUpdateError, retried).
    const a = d8([...args(venv.name, native.name), '--concurrency', '2'], extra);
    const locks = path.join(backendDir, '.pulumi', 'locks');
    const hasLock = (dir: string): boolean => fs.existsSync(dir) && fs.readdirSync(dir, { withFileTypes: true })
      .some((e) => (e.isDirectory() ? hasLock(path.join(dir, e.name)) : e.name.endsWith('.json')));
    await waitFor('the first deploy to lock the stack', async () => (hasLock(locks) ? true : null), 120_000, 100).catch(() => undefined);
    const b = d8(args(native.name), extra);
    const [ra, rb] = await Promise.all([a, b]);
    const parse = (r: CliRun) => {
      try {
        return JSON.parse(r.stdout) as Array<{ slave: string; ok: boolean; engine: string; commit: string; error: string | null }>;
      } catch {
        throw new Error(`d8 up exited ${r.code} without a JSON result:\n${r.stderr.slice(-3000)}`);
      }
    };
    const results = [...parse(ra), ...parse(rb)];
    expect(results.filter((r) => !r.ok).map((r) => `${r.slave}: ${r.error}`)).toEqual([]);
    expect([ra.code, rb.code]).toEqual([0, 0]);
    expect(results.map((r) => [r.slave, r.ok, r.engine, r.commit])).toEqual([
      [venv.name, true, 'pulumi', project.head], [native.name, true, 'pulumi', project.head], [native.name, true, 'pulumi', project.head],
    ]);
    // Three updates, none overlapping another.
    const updates = (await stack.history()).slice(0, (await stack.history()).length - historyBefore)
      .map((u) => ({ start: new Date(u.startTime).getTime(), end: new Date(u.endTime ?? u.startTime).getTime(), result: u.result }));
    expect(updates).toHaveLength(3);
    expect(updates.every((u) => u.result === 'succeeded')).toBe(true);
    const sorted = [...updates].sort((x, y) => x.start - y.start);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i].start).toBeGreaterThanOrEqual(sorted[i - 1].end);
    if (/locked by another update: retrying/.test(rb.stderr + ra.stderr)) process.stderr.write('[engine] the second process met the stack lock and retried\n');
  });

  it('`pulumi destroy` runs uninstall and leaves the hosts clean', async () => {
    const r = await stack.destroy(quiet);
    destroyed = true;
    expect(r.summary.result).toBe('succeeded');
    expect(r.summary.resourceChanges).toEqual({ delete: 13 });
    for (const b of boxes) {
      expect((await probeInstalled(b.host.host, b.port, 2000)).ok).toBe(false);
      expect(agentPids(b.host.user, b.port)).toEqual([]);
      expect(containersForPort(b.port)).toEqual([]);
      const state = path.join(b.host.home, '.d8-agent');
      // Other suites may have their own agents under the same user at the same time: then only ours must be gone.
      const others = fs.existsSync(state) ? fs.readdirSync(state).filter((f) => /^agent-\d+/.test(f)) : [];
      if (others.length === 0) expect(fs.existsSync(state)).toBe(false);
      else expect(others.filter((f) => f.startsWith(`agent-${b.port}`))).toEqual([]);
    }
  });
});
