/**
 * `pulumi up` (the real engine, this repository's program) to a host without node: the slave's `arch`
 * in the stack config makes the program ship the Node.js runtime (from a loopback mirror of this
 * machine's node, through the master's cache) with the bundle; the agent runs on it, and again after
 * a new release (the master's cache is not fetched twice). Host: scripts/test-hosts.sh "nonode".
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { LocalWorkspace, PulumiCommand, type Stack } from '@pulumi/pulumi/automation';
import { buildBundle, type BundleInfo } from '../../agent/bundle/build';
import { captureVersionInfo } from '../../core/version-info';
import { probeInstalled } from '../support/agent-process';
import { describeTier, type TierCheck } from '../support/tier';
import { nodeMirrorDir, serveNodeMirror, type NodeMirrorDir, type NodeMirrorServer } from '../support/node-mirror';
import { agentPids, freePort, randomToken, systemTier, upTestHosts, type TestHosts } from '../system/support/hosts';
import { createFleetProject, uninstallPort, writeStackFile, type FleetProject } from './support/fleet-project';
import { localBackendEnv, pulumiEngineTier, pulumiToolchain } from './support/toolchain';

jest.setTimeout(10 * 60_000);

const STACK = 'rt';
const tier: TierCheck = {
  tier: 'engine',
  missing: () => pulumiEngineTier.missing() ?? systemTier.missing(),
  enable: `${pulumiEngineTier.enable}; ${systemTier.enable}`,
};
const quiet = { onOutput: () => undefined, color: 'never' as const };

describeTier(tier, 'pulumi up to a host without node (d8:slaves[].arch)', () => {
  let work: string;
  let backendDir: string;
  let project: FleetProject;
  let th: TestHosts;
  let mirror: NodeMirrorDir;
  let server: NodeMirrorServer;
  let stack: Stack;
  let port: number;
  let bundleOld: BundleInfo;
  let bundleNew: BundleInfo;
  let env: Record<string, string>;
  const runtimeDir = (): string => `${th.hosts.nonode.home}/.d8-agent/runtime/node-${mirror.version}-linux-x64`;

  beforeAll(async () => {
    th = upTestHosts();
    mirror = nodeMirrorDir();
    server = await serveNodeMirror(mirror.root);
    const toolchain = pulumiToolchain();
    const backend = localBackendEnv('d8-engine-rt-backend-');
    backendDir = backend.dir;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-engine-rt-'));
    project = createFleetProject(path.join(work, 'project'));
    const base = captureVersionInfo(project.dir);
    bundleOld = await buildBundle({ outRoot: path.join(work, 'bundles'), versionInfo: { ...base, commit: project.old, dirty: false } });
    bundleNew = await buildBundle({ outRoot: path.join(work, 'bundles'), versionInfo: { ...base, commit: project.head, dirty: false } });
    port = await freePort();
    const h = th.hosts.nonode;
    writeStackFile(project.dir, STACK, {
      sshKeyPath: th.key, installAttempts: 1, installDelaySeconds: 1, nodeDistUrl: server.url, nodeVersion: mirror.version,
      slaves: [{ name: 'bare-box', host: h.host, user: h.user, sshPort: h.port, agentPort: port, strategies: ['venv'], hostKey: h.hostKey, arch: 'x64' }],
    });
    env = {};
    for (const [k, v] of Object.entries({ ...toolchain.env, ...backend.env })) if (v !== undefined) env[k] = v;
    fs.mkdirSync(path.join(work, 'tmp'));
    Object.assign(env, { D8_HOME: path.join(work, 'd8-home'), D8_AGENT_TOKEN: randomToken(), D8_BUNDLE_DIR: bundleOld.dir, TMPDIR: path.join(work, 'tmp') });
    delete env.D8_SSH_PRIVATE_KEY;
    delete env.D8_SSH_KEY_PATH;
    uninstallPort(h.user, port);
    fs.rmSync(`${h.home}/.d8-agent/runtime`, { recursive: true, force: true });
    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(toolchain.binDir) });
    stack = await LocalWorkspace.createOrSelectStack({ stackName: STACK, workDir: project.dir }, { pulumiCommand, envVars: env });
  });

  afterAll(async () => {
    if (stack) await stack.destroy(quiet).catch(() => undefined);
    if (th) uninstallPort(th.hosts.nonode.user, port);
    if (stack) await stack.workspace.removeStack(STACK, { force: true }).catch(() => undefined);
    await server?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    if (backendDir) fs.rmSync(backendDir, { recursive: true, force: true });
  });

  it('ships the runtime with the bundle; the agent runs on it', async () => {
    const up = await stack.up(quiet);
    expect(up.summary.result).toBe('succeeded');
    expect((up.outputs.slaves.value as Record<string, { strategy: string }>)['bare-box'].strategy).toBe('venv');
    const h = await probeInstalled(th.hosts.nonode.host, port, 5000);
    expect(h.ok && { commit: h.health.commit, node: h.health.node_version }).toEqual({ commit: project.old, node: mirror.version.replace(/^v/, '') });
    const pids = agentPids(th.hosts.nonode.user, port);
    expect(pids).toHaveLength(1);
    expect(fs.readlinkSync(`/proc/${pids[0]}/exe`)).toBe(`${runtimeDir()}/bin/node`);
    expect(server.requests.filter((r) => r.endsWith('.tar.gz'))).toHaveLength(1);
  });

  it('a new release runs on the runtime again, without fetching it again', async () => {
    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(pulumiToolchain().binDir) });
    const next = await LocalWorkspace.selectStack({ stackName: STACK, workDir: project.dir }, { pulumiCommand, envVars: { ...env, D8_BUNDLE_DIR: bundleNew.dir } });
    const up = await next.up(quiet);
    expect(up.summary.result).toBe('succeeded');
    const h = await probeInstalled(th.hosts.nonode.host, port, 5000);
    expect(h.ok && { commit: h.health.commit, node: h.health.node_version }).toEqual({ commit: project.head, node: mirror.version.replace(/^v/, '') });
    expect(fs.readlinkSync(`/proc/${agentPids(th.hosts.nonode.user, port)[0]}/exe`)).toBe(`${runtimeDir()}/bin/node`);
    expect(fs.readdirSync(`${th.hosts.nonode.home}/.d8-agent/runtime/.incoming`)).toEqual([]);
    expect(server.requests.filter((r) => r.endsWith('.tar.gz'))).toHaveLength(1);
  });
});
