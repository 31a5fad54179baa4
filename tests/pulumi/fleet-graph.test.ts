/**
 * The fleet program under pulumi.runtime.setMocks: the resource graph of a 3-slave fleet, its URNs,
 * the exact installer commands, what a new commit changes, where the token goes, and the outputs.
 */
import fs from 'fs';
import path from 'path';
import * as pulumi from '@pulumi/pulumi';
import type { BundleInfo } from '../../agent/bundle/build';
import { installCommand, remoteBundleDir, uninstallCommand } from '../../agent/install/command';
import { purgeCommand, uninstallOnDelete } from '../../infra/shell';
import {
  LOCAL_COMMAND_TYPE, REMOTE_COMMAND_TYPE, REMOTE_COPY_TYPE, SLAVE_HOST_TYPE, slaveUrns,
} from '../../infra/urns';
import { bundleFor, randomCommit, tempDir } from './support/fixtures';
import { engineState, HOST_KEY, KEYS, resolve, threeSlaves, TOKEN, WINNERS } from './support/fleet-fixture';
import { isSecretInput, mockEngine, unwrap, valueOf, type Registered } from './support/mock-engine';

type FleetModule = typeof import('../../infra/fleet');
let fleetMod: FleetModule;
let root: string;
let bundleA: BundleInfo;
let bundleB: BundleInfo;

beforeAll(async () => {
  root = tempDir('d8-pulumi-graph-');
  bundleA = await bundleFor(root, randomCommit());
  bundleB = await bundleFor(root, randomCommit());
  // The program is loaded only once mocks are in place.
  await mockEngine('prod');
  fleetMod = require('../../infra/fleet') as FleetModule;
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

async function declare(stack: string, bundle: BundleInfo, raw = threeSlaves()) {
  const session = await mockEngine(stack, { state: engineState });
  const config = resolve(stack, raw as Record<string, unknown>);
  const fleet = fleetMod.createFleet(config, bundle, { resourceOptions: session.resourceOptions });
  const resources = await session.settle();
  return { config, fleet, resources };
}

const SLAVES = [
  { name: 'pc', local: false },
  { name: 'vps', local: false },
  { name: 'pi', local: true },
];

function get(resources: Map<string, Registered>, name: string): Registered {
  const r = resources.get(name);
  if (!r) throw new Error(`no resource named ${name} (have: ${[...resources.keys()].join(', ')})`);
  return r;
}

describe('a 3-slave fleet', () => {
  let resources: Map<string, Registered>;
  let config: ReturnType<typeof resolve>;
  let fleet: ReturnType<FleetModule['createFleet']>;

  beforeAll(async () => {
    ({ resources, config, fleet } = await declare('prod', bundleA));
  });

  it('declares one SlaveHost with a state, a bundle and an install child per slave, and nothing else', () => {
    expect([...resources.keys()].sort()).toEqual(
      SLAVES.flatMap((s) => [s.name, `${s.name}-state`, `${s.name}-bundle`, `${s.name}-install`]).sort());
    for (const s of SLAVES) {
      expect(get(resources, s.name).type).toBe(SLAVE_HOST_TYPE);
      expect(get(resources, s.name).parentName).toBeNull();
      expect(get(resources, `${s.name}-bundle`).parentName).toBe(s.name);
      expect(get(resources, `${s.name}-install`).parentName).toBe(s.name);
      expect(get(resources, `${s.name}-state`).parentName).toBe(s.name);
      expect(get(resources, `${s.name}-state`).type).toBe(s.local ? LOCAL_COMMAND_TYPE : REMOTE_COMMAND_TYPE);
      expect(get(resources, `${s.name}-bundle`).type).toBe(s.local ? LOCAL_COMMAND_TYPE : REMOTE_COPY_TYPE);
      expect(get(resources, `${s.name}-install`).type).toBe(s.local ? LOCAL_COMMAND_TYPE : REMOTE_COMMAND_TYPE);
    }
  });

  it('has exactly the URNs infra/urns.ts gives the master to target', () => {
    for (const s of SLAVES) {
      const urns = slaveUrns('prod', s.name, { local: s.local });
      expect(get(resources, s.name).urn).toBe(urns.component);
      expect(get(resources, `${s.name}-bundle`).urn).toBe(urns.bundle);
      expect(get(resources, `${s.name}-install`).urn).toBe(urns.install);
      expect(get(resources, `${s.name}-state`).urn).toBe(urns.state);
    }
  });

  it('runs exactly the installer command lines of agent/install/command.ts, under a time limit', () => {
    for (const s of config.slaves) {
      const install = get(resources, `${s.name}-install`).inputs;
      const dir = remoteBundleDir(bundleA.hash);
      const expected = installCommand({
        bundleDir: dir, strategies: s.strategies, attempts: 2, delaySeconds: 5, agentPort: s.agentPort,
      });
      const limit = fleetMod.installTimeoutSeconds(s, config);
      expect(install.create).toBe(`timeout -k 30 ${limit} ${expected}`);
      // The shared uninstall command line (stop only: a replace keeps the venv), and a fallback when that bundle is gone from the host.
      expect(install.delete).toBe(uninstallOnDelete(dir, s.agentPort, uninstallCommand(dir, s.agentPort, { stopOnly: true }), 300));
      expect(install.delete).toContain(`then timeout -k 30 300 ${uninstallCommand(dir, s.agentPort)} --stop-only; else`);
      // The full clean is the state's delete, with uninstall.sh inside it.
      const state = get(resources, `${s.name}-state`).inputs;
      expect(state.delete).toBe(purgeCommand(fs.readFileSync(path.join(bundleA.dir, 'uninstall.sh'), 'utf8'), s.agentPort, 300));
      expect(String(state.delete).split('\n').at(-1)).toBe(`timeout -k 30 300 sh "$f" --port ${s.agentPort}; rc=$?; rm -f "$f"; exit $rc`);
      expect(state.triggers).toBeUndefined();
      expect(install.logging).toBe('stdoutAndStderr');
      // The bundle's URN makes the bundle a property dependency: replacing the bundle deletes the install first.
      expect(install.triggers).toEqual([bundleA.versionInfo.commit, bundleA.hash, slaveUrns('prod', s.name, { local: s.local }).bundle]);
      // Whatever replaces the install replaces the bundle too (uninstall.sh removes the bundle directory).
      expect(get(resources, `${s.name}-bundle`).inputs.triggers).toEqual([bundleA.versionInfo.commit, bundleA.hash, install.create, install.delete]);
    }
    // Every strategy may use every attempt: 3 strategies × 2 attempts × (300 s + 5 s delay).
    expect(fleetMod.installTimeoutSeconds(config.slaves[0], config)).toBe(3 * 2 * 305);
    expect(fleetMod.installTimeoutSeconds(config.slaves[2], config)).toBe(1 * 2 * 305);
  });

  it('replaces an install by deleting it first, after its bundle is in place', () => {
    for (const s of SLAVES) {
      const install = get(resources, `${s.name}-install`);
      const bundle = get(resources, `${s.name}-bundle`);
      const state = get(resources, `${s.name}-state`);
      expect(install.opts.deleteBeforeReplace).toBe(true);
      const deps = install.opts.dependsOn as pulumi.Resource[];
      expect(deps).toHaveLength(2);
      expect(deps[0]).toBe(bundle.resource);
      // The state outlives bundle and install: created before them, deleted after them.
      expect(deps[1]).toBe(state.resource);
      expect(bundle.opts.dependsOn as pulumi.Resource[]).toEqual([state.resource]);
      expect(install.opts.replaceOnChanges).toEqual(expect.arrayContaining(['create', 'delete']));
      expect(install.opts.customTimeouts?.create).toMatch(/^\d+s$/);
    }
  });

  it('copies the bundle into the hash-named directory of remote slaves, creating the missing parents', async () => {
    // CopyToRemote only creates the last element of remotePath: the copy targets `.d8-agent` with a
    // staged tree `bundles/<hash16>/…` (infra/bundle-stage.ts).
    const [head, ...tail] = remoteBundleDir(bundleA.hash).split('/');
    for (const name of ['pc', 'vps']) {
      const copy = get(resources, `${name}-bundle`).inputs;
      expect(copy.remotePath).toBe(head);
      const source = copy.source as pulumi.asset.FileArchive;
      expect(source).toBeInstanceOf(pulumi.asset.FileArchive);
      const staged = await source.path;
      expect(staged.endsWith('/')).toBe(true);
      expect(fs.readdirSync(staged)).toEqual([tail[0]]);
      for (const f of bundleA.files) {
        expect(fs.readFileSync(`${staged}${tail.join('/')}/${f}`)).toEqual(fs.readFileSync(`${bundleA.dir}/${f}`));
      }
      expect(copy.triggers).toEqual(expect.arrayContaining([bundleA.versionInfo.commit, bundleA.hash]));
      expect(get(resources, `${name}-bundle`).opts.deleteBeforeReplace).toBe(true);
    }
  });

  it('connects over SSH with the secret key, sane dial limits, and checks the host key when one is configured', () => {
    const pc = get(resources, 'pc-install').inputs.connection;
    const vps = get(resources, 'vps-install').inputs.connection;
    expect(isSecretInput(pc)).toBe(true);
    expect(unwrap(pc)).toEqual({
      host: '127.0.0.2', port: 2222, user: 'd8', privateKey: KEYS.privatePem, hostKey: HOST_KEY,
      dialErrorLimit: 4, perDialTimeout: 20,
    });
    const v = unwrap(vps) as Record<string, unknown>;
    expect(v).toMatchObject({ host: 'vps.example.org', port: 22, user: 'deploy' });
    expect(v.hostKey).toBeUndefined();
    expect(unwrap(get(resources, 'pc-bundle').inputs.connection)).toEqual(unwrap(pc));
  });

  it('uses local commands without SSH for host: local', () => {
    const copy = get(resources, 'pi-bundle').inputs;
    const install = get(resources, 'pi-install').inputs;
    expect(copy.connection).toBeUndefined();
    expect(install.connection).toBeUndefined();
    expect(copy.create).toContain(`cp -R '${bundleA.dir}'`);
    expect(copy.create).toContain(`"$HOME"/'${remoteBundleDir(bundleA.hash)}'`);
    expect(copy.delete).toBe(`rm -rf "$HOME"/'${remoteBundleDir(bundleA.hash)}'`);
    expect(unwrap(install.stdin)).toBe(`${TOKEN}\n`);
  });

  it('passes the token only as the secret stdin of the installs', async () => {
    const carriers: string[] = [];
    for (const [name, r] of resources) {
      for (const [prop, value] of Object.entries(r.inputs)) {
        if (JSON.stringify(value ?? null).includes(TOKEN)) carriers.push(`${name}.${prop}`);
      }
    }
    expect(carriers.sort()).toEqual(['pc-install.stdin', 'pi-install.stdin', 'vps-install.stdin']);
    for (const s of SLAVES) {
      const install = get(resources, `${s.name}-install`);
      expect(isSecretInput(install.inputs.stdin)).toBe(true);
      expect(unwrap(install.inputs.stdin)).toBe(`${TOKEN}\n`);
      expect(install.opts.additionalSecretOutputs).toContain('stdin');
      const cmd = fleet.hosts[s.name].install;
      expect(await pulumi.isSecret(cmd.stdin)).toBe(true);
    }
    expect(JSON.stringify(await valueOf(fleet.outputs.slaves))).not.toContain(TOKEN);
  });

  it('outputs every slave with its endpoint (https where install.sh reported a certificate) and the strategy it reported', async () => {
    expect(await valueOf(fleet.outputs.slaves)).toEqual({
      pc: { endpoint: 'https://127.0.0.2:7600', strategy: WINNERS.pc, mode: 'ssh' },
      vps: { endpoint: 'http://vps.example.org:7601', strategy: WINNERS.vps, mode: 'ssh' },
      pi: { endpoint: 'http://127.0.0.1:7600', strategy: WINNERS.pi, mode: 'local' },
    });
    expect(fleet.outputs.commit).toBe(bundleA.versionInfo.commit);
    expect(fleet.outputs.bundleHash).toBe(bundleA.hash);
  });
});

describe('a new commit', () => {
  /** Inputs with the release's hash (the local copy checks it) and hash-named bundle directory written generically. */
  function normalized(r: Registered, bundle: BundleInfo): Record<string, unknown> {
    const text = JSON.stringify(r.inputs, (_k, v) => (v instanceof pulumi.asset.FileArchive ? { archive: 'bundle' } : v))
      .split(bundle.hash).join('<hash>').split(bundle.hash.slice(0, 16)).join('<hash16>');
    return JSON.parse(text) as Record<string, unknown>;
  }

  it('changes the triggers and, apart from the hash-named bundle directory, nothing else', async () => {
    const a = await declare('prod', bundleA);
    const b = await declare('prod', bundleB);
    expect([...b.resources.keys()].sort()).toEqual([...a.resources.keys()].sort());
    const changed: string[] = [];
    for (const [name, ra] of a.resources) {
      const na = normalized(ra, bundleA);
      const nb = normalized(get(b.resources, name), bundleB);
      for (const key of new Set([...Object.keys(na), ...Object.keys(nb)])) {
        if (JSON.stringify(na[key]) !== JSON.stringify(nb[key])) changed.push(`${name}.${key}`);
      }
    }
    expect(changed.sort()).toEqual(SLAVES.flatMap((s) => [`${s.name}-bundle.triggers`, `${s.name}-install.triggers`]).sort());
    expect(get(b.resources, 'vps-install').inputs.triggers).toEqual([bundleB.versionInfo.commit, bundleB.hash, slaveUrns('prod', 'vps', { local: false }).bundle]);
    // The copy's source is the new bundle, staged (a FileArchive is compared by content, not path, by the engine).
    const staged = await (get(b.resources, 'vps-bundle').inputs.source as pulumi.asset.FileArchive).path;
    expect(fs.readFileSync(`${staged}bundles/${bundleB.hash.slice(0, 16)}/BUNDLE_HASH`, 'utf8').trim()).toBe(bundleB.hash);
  });
});

describe('the winning strategy', () => {
  it('is null (with a warning, not a crash) when install.sh printed no valid result', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const { winningStrategy } = require('../../infra/slave-host') as typeof import('../../infra/slave-host');
      expect(winningStrategy('pc', 'starting\n{"ok":true,"strategy":"venv","attempts":[]}\n')).toBe('venv');
      expect(winningStrategy('pc', 'all strategies failed\n{"ok":false,"strategy":null,"attempts":[]}')).toBeNull();
      expect(warn).not.toHaveBeenCalled();
      expect(winningStrategy('pc', 'Segmentation fault\n')).toBeNull();
      expect(winningStrategy('vps', '')).toBeNull();
      const messages = warn.mock.calls.map((c) => String(c[0]));
      expect(messages).toEqual([
        expect.stringContaining('pc: cannot read the winning strategy'),
        expect.stringContaining('vps: cannot read the winning strategy: install.sh printed nothing'),
      ]);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('host keys recorded on first use (D8_HOME/known_hosts)', () => {
  it('a slave without hostKey gets the recorded key as its connection hostKey; a stack hostKey still wins', async () => {
    const { KnownHosts } = await import('../../core/known-hosts');
    const { parseHostKey } = await import('../../core/host-key');
    const { execFileSync } = await import('child_process');
    const dir = tempDir('d8-pulumi-known-hosts-');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'k')]);
    const recorded = parseHostKey(fs.readFileSync(path.join(dir, 'k.pub'), 'utf8'));
    const knownHosts = new KnownHosts(path.join(dir, 'known_hosts'));
    knownHosts.recordFirstUse('vps.example.org', 22, recorded, 'vps');
    // Recorded for pc too: its stack hostKey pins it and wins.
    knownHosts.recordFirstUse('127.0.0.2', 2222, recorded, 'pc');
    const session = await mockEngine('prod', { state: engineState });
    const fleet = fleetMod.createFleet(resolve('prod', threeSlaves() as Record<string, unknown>), bundleA, { resourceOptions: session.resourceOptions, knownHosts });
    const resources = await session.settle();
    for (const child of ['state', 'bundle', 'install']) {
      expect((unwrap(get(resources, `vps-${child}`).inputs.connection) as Record<string, unknown>).hostKey).toBe(recorded.authorizedKey);
      expect((unwrap(get(resources, `pc-${child}`).inputs.connection) as Record<string, unknown>).hostKey).toBe(HOST_KEY);
    }
    // The component reports the key its resources hold (the master compares it after `d8 trust`).
    expect(await valueOf(fleet.hosts.vps.hostKey)).toBe(recorded.authorizedKey);
    expect(await valueOf(fleet.hosts.pi.hostKey)).toBeNull();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
