/**
 * A host without node (scripts/test-hosts.sh "nonode": node hidden in its mount namespace) gets the
 * master's Node.js runtime over SSH from a loopback mirror of this machine's node, and the agent runs
 * on it; a second deploy does not push it again. A host whose probe says musl ("musl": getconf/ldd
 * shims) is refused with a clear error, and nothing is left on it. `d8 bootstrap-script --arch`
 * embeds the runtime: run on the no-node host, it checks and unpacks it and the agent runs on it.
 */
import { spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { NodeSSH } from 'node-ssh';
import { parseInstallOutput } from '../../core/install-result';
import { buildBundle, type BundleInfo } from '../../agent/bundle/build';
import { DirectDeployer, type DeployProgress } from '../../master/deploy/direct';
import { probeInstalled } from '../support/agent-process';
import type { FleetConfig, SlaveConfig } from '../../core/stack-config';
import { describeTier } from '../support/tier';
import { nodeMirrorDir, serveNodeMirror, type NodeMirrorDir, type NodeMirrorServer } from '../support/node-mirror';
import {
  agentPids, fleetConfig, freePort, REPO, systemTier, tempDir, uninstallAsUser, upTestHosts, userProcesses, type TestHosts,
} from './support/hosts';

jest.setTimeout(10 * 60 * 1000);

describeTier(systemTier, 'the shipped Node.js runtime on hosts without node', () => {
  let th: TestHosts;
  let bundle: BundleInfo;
  let mirror: NodeMirrorDir;
  let server: NodeMirrorServer;
  let config: FleetConfig;
  let deployer: DirectDeployer;
  let d8Home: string;
  let outRoot: string;
  let port: number;
  const progress: DeployProgress[] = [];
  const slave = (n: string): SlaveConfig => config.slaves.find((x) => x.name === n)!;
  const runtimeDir = (): string => `${th.hosts.nonode.home}/.d8-agent/runtime/node-${mirror.version}-linux-x64`;
  const tarballGets = (): number => server.requests.filter((r) => r.endsWith('.tar.gz')).length;

  beforeAll(async () => {
    th = upTestHosts();
    for (const u of [th.hosts.nonode.user, th.hosts.musl.user]) uninstallAsUser(REPO, u);
    mirror = nodeMirrorDir();
    server = await serveNodeMirror(mirror.root);
    port = await freePort();
    d8Home = tempDir('d8-systest-rt-home-');
    outRoot = tempDir('d8-systest-rt-bundles-');
    bundle = await buildBundle({ outRoot });
    config = fleetConfig(th, [
      { name: 'nonode', host: th.hosts.nonode, agentPort: port },
      { name: 'musl', host: th.hosts.musl, agentPort: await freePort() },
    ], { nodeDistUrl: server.url, nodeVersion: mirror.version });
    deployer = new DirectDeployer({ config, bundle, env: { ...process.env, D8_HOME: d8Home }, healthTimeoutSeconds: 60, onProgress: (p) => progress.push(p) });
  });

  afterAll(async () => {
    await server?.close();
    if (!th || process.env.D8_SYSTEST_KEEP === '1') return;
    for (const u of [th.hosts.nonode.user, th.hosts.musl.user]) uninstallAsUser(REPO, u);
    for (const d of [d8Home, outRoot]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  it('the probe sees no usable node and picks the x64 runtime', async () => {
    const report = await deployer.probe(slave('nonode'));
    expect(report.facts.node.version).toBeNull();
    expect(report.facts.node.error).toMatch(/\/node/);
    expect(report.verdict.runtime).toMatchObject({ need: 'push', arch: 'x64' });
    expect(report.verdict.strategies.map((s) => [s.strategy, s.ok])).toEqual([['docker', false], ['venv', true], ['native', true]]);
  });

  it('first deploy pushes the runtime, checks it on the host, and the agent runs on it', async () => {
    const r = await deployer.deploy(slave('nonode'), { reason: 'systest' });
    expect(r.error).toBeNull();
    expect(r).toMatchObject({ ok: true, status: 'deployed', strategy: 'venv', commit: bundle.versionInfo.commit });
    expect(tarballGets()).toBe(1);
    const health = await probeInstalled(th.hosts.nonode.host, port);
    expect(health.ok && health.health.node_version).toBe(mirror.version.replace(/^v/, '')); // the shipped node, as the agent reports it
    const pids = agentPids(th.hosts.nonode.user, port);
    expect(pids).toHaveLength(1);
    expect(fs.readlinkSync(`/proc/${pids[0]}/exe`)).toBe(`${runtimeDir()}/bin/node`);
    expect(fs.readFileSync(`${runtimeDir()}/.d8-sha256`, 'utf8').trim()).toBe(mirror.sha256);
    const msgs = progress.filter((p) => p.slave === 'nonode').map((p) => `${p.phase} ${p.message}`);
    expect(msgs).toEqual(expect.arrayContaining([
      expect.stringMatching(/^probe d8-nonode@x86_64 \(x64\) .*node: push v[\d.]+ x64; docker no, venv ok, native ok$/),
      expect.stringMatching(/^runtime pushing node v[\d.]+ for x64/),
      expect.stringMatching(/^runtime node v[\d.]+ \(x64\) pushed and checked in [\d.]+ s/),
    ]));
    const log = JSON.parse(fs.readFileSync(r.buildLogPath!, 'utf8')) as { commands: Array<{ command: string; stdout: string }> };
    const cmds = log.commands.map((c) => `${c.command}\n${c.stdout}`).join('\n');
    expect(cmds).toMatch(/^probe: arch, libc/m);
    expect(cmds).toMatch(/machine=x86_64/);
    expect(cmds).toMatch(new RegExp(`installed node-${mirror.version}-linux-x64 \\(${mirror.version}\\), sha256 ${mirror.sha256} checked with sha256sum`));
    expect(cmds).toMatch(/--node '\/home\/d8-nonode\/\.d8-agent\/runtime\/node-v[\d.]+-linux-x64\/bin\/node'/);
  });

  it('a second deploy finds the runtime there and does not push it again', async () => {
    const inode = fs.statSync(`${runtimeDir()}/bin/node`).ino;
    const before = progress.length;
    const r = await deployer.deploy(slave('nonode'), { reason: 'systest', force: true });
    expect(r.error).toBeNull();
    expect(r).toMatchObject({ ok: true, strategy: 'venv' });
    expect(tarballGets()).toBe(1);
    expect(fs.statSync(`${runtimeDir()}/bin/node`).ino).toBe(inode);
    const msgs = progress.slice(before).filter((p) => p.phase === 'runtime').map((p) => p.message);
    expect(msgs).toEqual([expect.stringMatching(/already on the host/)]);
    expect(fs.readlinkSync(`/proc/${agentPids(th.hosts.nonode.user, port)[0]}/exe`)).toBe(`${runtimeDir()}/bin/node`);
  });

  it('a musl host is refused before anything is written: what was found, what to do', async () => {
    const r = await deployer.deploy(slave('musl'), { reason: 'systest' });
    expect(r).toMatchObject({ ok: false, status: 'failed', errorKind: 'unsupported', attempts: [] });
    expect(r.error).toMatch(/^musl \(d8-musl@127\.0\.0\.18:2222\): no strategy can work on this host, nothing was installed: /);
    expect(r.error).toMatch(/docker: docker is not usable by d8-musl/);
    expect(r.error).toMatch(/venv: .*C library is musl \(ldd --version: musl libc \(x86_64\) Version 1\.2\.4.*no official musl build of v[\d.]+; install node from the distribution \(apk add nodejs\), or use the docker strategy/);
    expect(fs.existsSync(`${th.hosts.musl.home}/.d8-agent`)).toBe(false);
    // The SSH session's own sshd process goes away just after the deploy closes it.
    for (let i = 0; i < 50 && userProcesses(th.hosts.musl.user).length; i++) await new Promise((res) => setTimeout(res, 100));
    expect(userProcesses(th.hosts.musl.user)).toEqual([]);
    expect(tarballGets()).toBe(1);
  });

  it('d8 bootstrap-script --arch x64 embeds the runtime; run on the no-node host, the agent runs on it', async () => {
    uninstallAsUser(REPO, th.hosts.nonode.user);
    const dir = tempDir('d8-systest-rt-boot-');
    const bootPort = await freePort();
    fs.writeFileSync(path.join(dir, 'Pulumi.systest.yaml'), [
      'config:', '  d8:slaves:', `    - { name: box, host: ${th.hosts.nonode.host}, user: ${th.hosts.nonode.user}, agentPort: ${bootPort}, strategies: [venv] }`,
      `  d8:nodeDistUrl: ${server.url}`, `  d8:nodeVersion: ${mirror.version}`, '  d8:installDelaySeconds: 1', '',
    ].join('\n'));
    const file = path.join(dir, 'install-box.sh');
    const env = { ...process.env, D8_HOME: d8Home, D8_AGENT_TOKEN: config.agentToken!, D8_SSH_KEY_PATH: th.key };
    const g = spawnSync(process.execPath, [path.join(REPO, 'bin', 'd8.js'), 'bootstrap-script', 'box', '--stack', 'systest', '--dir', dir, '--arch', 'x64', '-o', file],
      { env, encoding: 'utf8', cwd: REPO, maxBuffer: 64 * 1024 * 1024 });
    expect(g.stderr).toMatch(/wrote .*install-box\.sh/);
    expect(g.status).toBe(0);
    expect(fs.statSync(file).size).toBeGreaterThan(mirror.bytes);
    const bad = spawnSync(process.execPath, [path.join(REPO, 'bin', 'd8.js'), 'bootstrap-script', 'box', '--stack', 'systest', '--dir', dir, '--arch', 'mips', '-o', `${file}.x`], { env, encoding: 'utf8', cwd: REPO });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--arch mips: not a shipped arch \(use x64, arm64, armv7l\)/);

    const ssh = await new NodeSSH().connect({ host: th.hosts.nonode.host, port: th.hosts.nonode.port, username: th.hosts.nonode.user, privateKey: fs.readFileSync(th.key, 'utf8') });
    try {
      await ssh.putFile(file, `${th.hosts.nonode.home}/install-box.sh`);
      const run = await ssh.execCommand('sh ./install-box.sh; rc=$?; rm -f ./install-box.sh; exit $rc', { cwd: th.hosts.nonode.home });
      expect(run.stderr).toMatch(new RegExp(`installed node-${mirror.version}-linux-x64 \\(${mirror.version}\\), sha256 ${mirror.sha256} checked with sha256sum`));
      expect(run.code).toBe(0);
      expect(parseInstallOutput(run.stdout)).toMatchObject({ ok: true, strategy: 'venv' });
    } finally {
      ssh.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const pids = agentPids(th.hosts.nonode.user, bootPort);
    expect(pids).toHaveLength(1);
    expect(fs.readlinkSync(`/proc/${pids[0]}/exe`)).toBe(`${runtimeDir()}/bin/node`);
  });
});
