/**
 * Old runtimes on a host: once the agent runs on the runtime the deploy shipped, install.sh removes
 * the other versions under ~/.d8-agent/runtime, except one a running process uses and one another
 * agent's runner names (it comes back at the next boot). Host: scripts/test-hosts.sh "nonode"
 * (node hidden), the real direct deployer over SSH, the runtime from a loopback mirror.
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import fs from 'fs';
import path from 'path';
import { buildBundle, type BundleInfo } from '../../agent/bundle/build';
import { DirectDeployer, type DeployProgress } from '../../master/deploy/direct';
import { describeTier } from '../support/tier';
import { nodeMirrorDir, serveNodeMirror, type NodeMirrorDir, type NodeMirrorServer } from '../support/node-mirror';
import { fleetConfig, freePort, REPO, systemTier, tempDir, uninstallAsUser, upTestHosts, type TestHosts } from './support/hosts';

jest.setTimeout(10 * 60 * 1000);

describeTier(systemTier, 'old runtimes on a host are removed once the agent runs on the new one', () => {
  let th: TestHosts;
  let bundle: BundleInfo;
  let mirror: NodeMirrorDir;
  let server: NodeMirrorServer;
  let d8Home: string;
  let outRoot: string;
  let port: number;
  let otherPort: number;
  let holder: ChildProcess | null = null;
  const root = (): string => `${th.hosts.nonode.home}/.d8-agent/runtime`;
  const user = (): string => th.hosts.nonode.user;

  /** A fake runtime directory owned by the host's user, with an executable bin/<name>. */
  function fakeRuntime(version: string, exe = 'node'): string {
    const dir = `${root()}/node-${version}-linux-x64`;
    fs.mkdirSync(`${dir}/bin`, { recursive: true });
    fs.copyFileSync('/bin/sleep', `${dir}/bin/${exe}`);
    fs.chmodSync(`${dir}/bin/${exe}`, 0o755);
    spawnSync('chown', ['-R', `${user()}:`, `${th.hosts.nonode.home}/.d8-agent`]);
    return dir;
  }

  beforeAll(async () => {
    th = upTestHosts();
    uninstallAsUser(REPO, user());
    mirror = nodeMirrorDir();
    server = await serveNodeMirror(mirror.root);
    port = await freePort();
    otherPort = await freePort();
    d8Home = tempDir('d8-systest-prune-home-');
    outRoot = tempDir('d8-systest-prune-bundles-');
    bundle = await buildBundle({ outRoot });
  });

  afterAll(async () => {
    holder?.kill('SIGKILL');
    await server?.close();
    if (!th) return;
    uninstallAsUser(REPO, user());
    fs.rmSync(`${th.hosts.nonode.home}/.d8-agent`, { recursive: true, force: true });
    for (const d of [d8Home, outRoot]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  it('removes an unused old version, keeps one in use by a process and one another agent\'s runner names', async () => {
    const unused = fakeRuntime('v18.0.0');
    const running = fakeRuntime('v19.0.0', 'sleeper');
    const named = fakeRuntime('v21.0.0');
    // A process of the user runs from `running`; another port's runner names `named`.
    const id = (flag: string): number => Number(spawnSync('id', [flag, user()], { encoding: 'utf8' }).stdout.trim());
    holder = spawn(`${running}/bin/sleeper`, ['600'], { stdio: 'ignore', uid: id('-u'), gid: id('-g') });
    const runner = `${th.hosts.nonode.home}/.d8-agent/agent-${otherPort}`;
    fs.mkdirSync(runner, { recursive: true });
    fs.writeFileSync(`${runner}/run.sh`, `#!/bin/sh\nexec '${named}/bin/node' '${runner}/agent.js'\n`);
    spawnSync('chown', ['-R', `${user()}:`, `${th.hosts.nonode.home}/.d8-agent`]);
    await new Promise((r) => setTimeout(r, 300));

    const config = fleetConfig(th, [{ name: 'nonode', host: th.hosts.nonode, agentPort: port, strategies: ['venv'] }],
      { nodeDistUrl: server.url, nodeVersion: mirror.version, installAttempts: 1 });
    const progress: DeployProgress[] = [];
    const deployer = new DirectDeployer({ config, bundle, env: { ...process.env, D8_HOME: d8Home }, healthTimeoutSeconds: 60, onProgress: (p) => progress.push(p) });
    const r = await deployer.deploy(config.slaves[0], { reason: 'systest' });
    expect(r.error).toBeNull();
    expect(r).toMatchObject({ ok: true, strategy: 'venv' });

    const current = `node-${mirror.version}-linux-x64`;
    expect(fs.readdirSync(root()).filter((d) => d.startsWith('node-')).sort()).toEqual([current, path.basename(running), path.basename(named)].sort());
    expect(fs.existsSync(unused)).toBe(false);
    const said = progress.filter((p) => p.phase === 'install').map((p) => p.message);
    expect(said).toContain(`runtime: removed node-v18.0.0-linux-x64 (the agent runs on ${current})`);
    expect(said).toContainEqual(expect.stringMatching(new RegExp(`^runtime: keeping node-v19\\.0\\.0-linux-x64: running process\\(es\\) \\d+`)));
    expect(said).toContainEqual(`runtime: keeping node-v21.0.0-linux-x64: named by ${runner}/run.sh`);

    // Once nothing uses them, the next deploy removes them too.
    holder.kill('SIGKILL');
    holder = null;
    fs.rmSync(runner, { recursive: true, force: true });
    await new Promise((r2) => setTimeout(r2, 300));
    const again = await deployer.deploy(config.slaves[0], { reason: 'systest', force: true });
    expect(again).toMatchObject({ ok: true, strategy: 'venv' });
    expect(fs.readdirSync(root()).filter((d) => d.startsWith('node-'))).toEqual([current]);
  });
});
