/**
 * `pulumi up` for a host without node: a slave with `arch` in the stack config gets the Node.js
 * runtime (from the master's cache, fetched from a loopback mirror of this machine's node) copied
 * with its bundle, and its install first checks and unpacks it, then runs install.sh --node. The
 * staged copy is then unpacked for real by that same command line, in a scratch home.
 */
import { spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import type { BundleInfo } from '../../agent/bundle/build';
import { installCommand, remoteBundleDir } from '../../agent/install/command';
import { ensureRuntimeCommand, runtimeNodeOnHost } from '../../core/runtime-unpack';
import { bundleFor, randomCommit, tempDir } from './support/fixtures';
import { engineState, resolve, threeSlaves } from './support/fleet-fixture';
import { mockEngine, type Registered } from './support/mock-engine';
import { nodeMirrorDir, serveNodeMirror, type NodeMirrorDir, type NodeMirrorServer } from '../support/node-mirror';

type FleetModule = typeof import('../../infra/fleet');
type RuntimesModule = typeof import('../../infra/runtimes');
let fleetMod: FleetModule;
let runtimesMod: RuntimesModule;
let root: string;
let bundle: BundleInfo;
let mirror: NodeMirrorDir;
let server: NodeMirrorServer;

jest.setTimeout(120_000);

beforeAll(async () => {
  root = tempDir('d8-pulumi-runtime-');
  bundle = await bundleFor(root, randomCommit());
  mirror = nodeMirrorDir();
  server = await serveNodeMirror(mirror.root);
  await mockEngine('prod');
  fleetMod = require('../../infra/fleet') as FleetModule;
  runtimesMod = require('../../infra/runtimes') as RuntimesModule;
});

afterAll(async () => {
  await server?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('a slave with arch: x64 and no node', () => {
  let resources: Map<string, Registered>;
  const notes: string[] = [];

  beforeAll(async () => {
    const session = await mockEngine('prod', { state: engineState });
    const raw = threeSlaves();
    raw.slaves![0] = { ...raw.slaves![0], arch: 'x64' };
    raw.slaves![2] = { ...raw.slaves![2], arch: 'x64' }; // host: local: the master runs node already
    const config = resolve('prod', { ...raw, nodeDistUrl: server.url, nodeVersion: mirror.version });
    const runtimes = await runtimesMod.fleetRuntimes(config, { D8_HOME: path.join(root, 'home') }, (m) => notes.push(m));
    expect(Object.keys(runtimes)).toEqual(['pc']);
    fleetMod.createFleet(config, bundle, { resourceOptions: session.resourceOptions, runtimes });
    resources = await session.settle();
  });

  const rt = () => ({ sha256: mirror.sha256, version: mirror.version, arch: 'x64' as const });

  it('installs with the runtime: check and unpack it (kept when already there), then install.sh --node', () => {
    const create = resources.get('pc-install')!.inputs.create as string;
    const install = installCommand({
      bundleDir: remoteBundleDir(bundle.hash), strategies: ['docker', 'venv', 'native'], attempts: 2, delaySeconds: 5, agentPort: 7600,
      nodePath: runtimeNodeOnHost(rt()),
    });
    expect(create).toBe(`${ensureRuntimeCommand(rt())} && timeout -k 30 ${3 * 2 * 305} ${install}`);
    expect(install).toContain(`--node "$HOME"/'.d8-agent/runtime/node-${mirror.version}-linux-x64/bin/node'`);
    expect(notes.join('\n')).toMatch(new RegExp(`pc: shipping node ${mirror.version} for linux-x64 with the bundle`));
    // Slaves without arch are unchanged.
    expect(resources.get('vps-install')!.inputs.create as string).not.toContain('d8-runtime');
    expect(resources.get('pi-install')!.inputs.create as string).not.toContain('d8-runtime');
  });

  it('the bundle copy carries the tarball, and that command line unpacks it for real', async () => {
    const source = { path: await (resources.get('pc-bundle')!.inputs.source as { path: Promise<string> }).path };
    const staged = path.join(source.path, 'runtime', '.incoming', `node-${mirror.version}-linux-x64.tar.gz`);
    expect(fs.statSync(staged).size).toBe(mirror.bytes);
    // What the remote host does with the copy (remotePath .d8-agent), in a scratch home.
    const home = path.join(root, 'host-home');
    fs.mkdirSync(home);
    fs.cpSync(source.path, path.join(home, '.d8-agent'), { recursive: true });
    const run = () => spawnSync('sh', ['-c', ensureRuntimeCommand(rt())], { env: { ...process.env, HOME: home }, encoding: 'utf8' });
    const first = run();
    expect(first.stderr).toMatch(new RegExp(`installed node-${mirror.version}-linux-x64 \\(${mirror.version}\\), sha256 ${mirror.sha256} checked`));
    expect(first.status).toBe(0);
    const node = path.join(home, runtimeNodeOnHost(rt()));
    expect(spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()).toBe(mirror.version);
    // The next release copies the tarball again: the runtime is kept, the copy removed.
    fs.cpSync(source.path, path.join(home, '.d8-agent'), { recursive: true });
    const inode = fs.statSync(node).ino;
    const second = run();
    expect(second.status).toBe(0);
    expect(second.stderr).toMatch(/is already in/);
    expect(fs.statSync(node).ino).toBe(inode);
    expect(fs.readdirSync(path.join(home, '.d8-agent', 'runtime', '.incoming'))).toEqual([]);
  });
});

it('an arch the mirror has no build for stops the program with the reason', async () => {
  const raw = threeSlaves();
  raw.slaves![1] = { ...raw.slaves![1], arch: 'armv7l' };
  const config = resolve('prod', { ...raw, nodeDistUrl: server.url, nodeVersion: mirror.version });
  await expect(runtimesMod.fleetRuntimes(config, { D8_HOME: path.join(root, 'home2') }, () => undefined))
    .rejects.toThrow(/lists no node-v[\d.]+-linux-armv7l\.tar\.gz/);
});

describe('no arch in the config: what the master\'s probe found (D8_PROBED_RUNTIMES)', () => {
  const config = () => resolve('prod', { ...threeSlaves(), nodeDistUrl: server.url, nodeVersion: mirror.version });
  const home = () => path.join(root, 'home');

  it('ships the runtime to the probed slave only, saying why', async () => {
    const notes: string[] = [];
    const runtimes = await runtimesMod.fleetRuntimes(config(), { D8_HOME: home(), D8_PROBED_RUNTIMES: '{"pc":"x64"}' }, (m) => notes.push(m));
    expect(Object.keys(runtimes)).toEqual(['pc']);
    expect(runtimes.pc).toMatchObject({ arch: 'x64', version: mirror.version, sha256: mirror.sha256 });
    expect(notes.join('\n')).toMatch(/pc: shipping node .* \(the master's probe found no usable node; /);
  });

  it('a raw pulumi up (no probe, no arch) ships nothing, as before; an empty value is the same', async () => {
    expect(await runtimesMod.fleetRuntimes(config(), { D8_HOME: home() }, () => undefined)).toEqual({});
    expect(await runtimesMod.fleetRuntimes(config(), { D8_HOME: home(), D8_PROBED_RUNTIMES: '' }, () => undefined)).toEqual({});
  });

  it.each(['x64', '{"pc":"sparc"}', '["pc"]'])('a malformed value (%s) is a config error naming the variable', async (v) => {
    await expect(runtimesMod.fleetRuntimes(config(), { D8_HOME: home(), D8_PROBED_RUNTIMES: v }, () => undefined))
      .rejects.toThrow(/D8_PROBED_RUNTIMES must be a JSON object of slave name to x64, arm64 or armv7l/);
  });
});
