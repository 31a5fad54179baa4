/**
 * The Pulumi entry (infra/program.ts) as `pulumi up` runs it: config fed with setAllConfig the way
 * the CLI hands it over (every value a string, secrets listed), environment overrides, the dev
 * token, and the project/stack files a user starts from.
 */
import fs from 'fs';
import path from 'path';
import * as pulumi from '@pulumi/pulumi';
import YAML from 'yaml';
import type { BundleInfo } from '../../agent/bundle/build';
import { ConfigError, readStackFile, resolveFleetConfig } from '../../core/stack-config';
import { LOCAL_COMMAND_TYPE, PROJECT_NAME } from '../../infra/urns';
import { bundleFor, randomCommit, randomToken, tempDir } from './support/fixtures';
import { engineState, KEYS, writeKeyFile } from './support/fleet-fixture';
import { isSecretInput, mockEngine, unwrap, valueOf } from './support/mock-engine';

const REPO = path.resolve(__dirname, '..', '..');
type ProgramModule = typeof import('../../infra/program');
let programMod: ProgramModule;
let root: string;
let bundle: BundleInfo;
let keyFile: string;

beforeAll(async () => {
  root = tempDir('d8-pulumi-program-');
  bundle = await bundleFor(root, randomCommit());
  keyFile = writeKeyFile(root, KEYS.privatePem);
  await mockEngine('prod');
  programMod = require('../../infra/program') as ProgramModule;
});

afterAll(() => {
  pulumi.runtime.setAllConfig({});
  fs.rmSync(root, { recursive: true, force: true });
});

const SLAVES = [
  { name: 'desktop', host: '192.0.2.10', user: 'me', strategies: ['docker', 'venv'] },
  { name: 'vps', host: 'vps.example.org', user: 'deploy', sshPort: 2222 },
];

describe('reading the d8: stack config', () => {
  it('parses lists and numbers, keeps strings verbatim and ignores other namespaces', async () => {
    await mockEngine('prod');
    const token = '123456789012345678901234567890';
    pulumi.runtime.setAllConfig({
      'd8:slaves': JSON.stringify(SLAVES),
      'd8:installAttempts': '2',
      'd8:checkIntervalSeconds': '45',
      'd8:agentToken': token,
      'd8:sshKeyPath': keyFile,
      'd8:telegramChatIds': '-1001234',
      'aws:region': 'eu-west-1',
    }, ['d8:agentToken']);
    const config = programMod.readFleetConfig({});
    expect(config.stack).toBe('prod');
    expect(config.slaves.map((s) => [s.name, s.sshPort, s.agentPort, s.strategies])).toEqual([
      ['desktop', 22, 7600, ['docker', 'venv']],
      ['vps', 2222, 7600, ['docker', 'venv', 'native']],
    ]);
    expect(config.installAttempts).toBe(2);
    expect(config.checkIntervalSeconds).toBe(45);
    // An all-digit secret must stay a string, not become a number through JSON.
    expect(config.agentToken).toBe(token);
    expect(config.sshKeyPath).toBe(keyFile);
    expect(config.telegramChatIds).toEqual(['-1001234']);
  });

  it('lets the environment override secrets', async () => {
    await mockEngine('prod');
    pulumi.runtime.setAllConfig({ 'd8:slaves': JSON.stringify(SLAVES), 'd8:agentToken': randomToken(), 'd8:sshKeyPath': keyFile }, ['d8:agentToken']);
    const fromEnv = randomToken();
    expect(programMod.readFleetConfig({ D8_AGENT_TOKEN: fromEnv }).agentToken).toBe(fromEnv);
  });

  it('names the key when a value is not what the schema expects', async () => {
    await mockEngine('prod');
    pulumi.runtime.setAllConfig({ 'd8:slaves': '[{"name":"a","host":"h","user":"u","strategies":["podman"]}]' });
    expect(() => programMod.readFleetConfig({})).toThrow(/stack prod: d8:slaves\[0\] \(a\)\.strategies\[0\]/);
    pulumi.runtime.setAllConfig({ 'd8:slaves': 'desktop,vps' });
    expect(() => programMod.readFleetConfig({})).toThrow(/stack prod: d8:slaves Expected array, received string/);
    pulumi.runtime.setAllConfig({ 'd8:slavez': '[]' });
    expect(() => programMod.readFleetConfig({})).toThrow(/d8:slavez is not a known key/);
  });

  it('generates and keeps the dev stack token in D8_HOME, mode 0600', async () => {
    await mockEngine('dev');
    const home = tempDir('d8-home-');
    try {
      pulumi.runtime.setAllConfig({ 'd8:slaves': JSON.stringify([{ name: 'local', host: 'local' }]) });
      const first = programMod.readFleetConfig({ D8_HOME: home }).agentToken;
      expect(first).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      expect(programMod.readFleetConfig({ D8_HOME: home }).agentToken).toBe(first);
      const file = path.join(home, 'dev-agent-token');
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('needs no fleet token: every slave gets its own, in swarm mode too', async () => {
    const home = tempDir('d8-home-');
    try {
      const session = await mockEngine('prod', { state: engineState });
      pulumi.runtime.setAllConfig({ 'd8:slaves': JSON.stringify(SLAVES), 'd8:sshKeyPath': keyFile });
      await programMod.program({ D8_HOME: home, D8_BUNDLE_DIR: bundle.dir }, { resourceOptions: session.resourceOptions });
      const installs = [...(await session.settle()).values()].filter((r) => r.name.endsWith('-install'));
      expect(installs).toHaveLength(2);
      const own = SLAVES.map((s) => (JSON.parse(fs.readFileSync(path.join(home, 'tokens', 'prod', `${s.name}.json`), 'utf8')) as { current: string }).current);
      expect(new Set(own).size).toBe(2);
      expect(installs.map((r) => unwrap(r.inputs.stdin)).sort()).toEqual(own.map((t) => `${t}\n`).sort());
      expect(fs.existsSync(path.join(home, 'dev-agent-token'))).toBe(false);
      await mockEngine('prod');
      pulumi.runtime.setAllConfig({ 'd8:swarm': 'ssh://d8@127.0.0.1:9', 'd8:sshKeyPath': keyFile, 'd8:slaves': JSON.stringify([{ name: 'n1', host: '127.0.0.1', user: 'd8' }]) });
      // Past the token check, the program asks the manager for its nodes (nobody listens on port 9).
      await expect(programMod.program({ D8_HOME: home, D8_BUNDLE_DIR: bundle.dir })).rejects.toThrow(/^cannot reach the swarm manager d8@127\.0\.0\.1 port 9 over ssh/);
      const n1 = JSON.parse(fs.readFileSync(path.join(home, 'tokens', 'prod', 'n1.json'), 'utf8')) as { current: string; installed: boolean };
      expect(n1.installed).toBe(false);
      expect(own).not.toContain(n1.current);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('the program', () => {
  it('declares the fleet of the dev stack and returns its outputs', async () => {
    const session = await mockEngine('dev', { state: engineState });
    const home = tempDir('d8-home-');
    try {
      pulumi.runtime.setAllConfig({ 'd8:slaves': JSON.stringify([{ name: 'pi', host: 'local', strategies: ['native'] }]) });
      const outputs = await programMod.program({ D8_HOME: home, D8_BUNDLE_DIR: bundle.dir }, { resourceOptions: session.resourceOptions });
      expect(outputs.commit).toBe(bundle.versionInfo.commit);
      expect(outputs.bundleHash).toBe(bundle.hash);
      expect(await valueOf(outputs.slaves as pulumi.Output<unknown>)).toEqual({
        pi: { endpoint: 'http://127.0.0.1:7600', strategy: 'native', mode: 'local' },
      });
      const resources = await session.settle();
      expect([...resources.keys()].sort()).toEqual(['pi', 'pi-bundle', 'pi-install', 'pi-state']);
      const install = resources.get('pi-install')!;
      expect(install.type).toBe(LOCAL_COMMAND_TYPE);
      // The dev stack still generates its fleet token (the master's fallback for older agents), but
      // the installer receives the slave's own token, generated into D8_HOME/tokens with mode 0600.
      const fleetToken = fs.readFileSync(path.join(home, 'dev-agent-token'), 'utf8').trim();
      const tokenFile = path.join(home, 'tokens', 'dev', 'pi.json');
      const own = (JSON.parse(fs.readFileSync(tokenFile, 'utf8')) as { current: string; installed: boolean });
      expect(own.installed).toBe(false);
      expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);
      expect(own.current).not.toBe(fleetToken);
      expect(isSecretInput(install.inputs.stdin)).toBe(true);
      expect(unwrap(install.inputs.stdin)).toBe(`${own.current}\n`);
      expect(JSON.stringify(outputs)).not.toContain(own.current);
      expect(JSON.stringify(outputs)).not.toContain(fleetToken);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('turns a bad config into a RunError (one line, no stack trace) naming the key', async () => {
    await mockEngine('prod');
    pulumi.runtime.setAllConfig({ 'd8:slaves': JSON.stringify([{ name: 'x', host: 'h', user: 'u', agentPort: 0 }]) });
    const err = await programMod.program({ D8_HOME: path.join(root, 'home'), D8_BUNDLE_DIR: bundle.dir }).catch((e: unknown) => e);
    expect(pulumi.RunError.isInstance(err)).toBe(true);
    expect((err as Error).message).toMatch(/stack prod: d8:slaves\[0\] \(x\)\.agentPort must be between 1 and 65535/);
  });

  it('swarm mode: asks the manager for the nodes\' platform, and an unreachable manager is a RunError naming the check', async () => {
    await mockEngine('prod');
    // Nothing listens on port 9: the real ssh fails, before any resource is declared.
    pulumi.runtime.setAllConfig({
      'd8:swarm': 'ssh://d8@127.0.0.1:9', 'd8:sshKeyPath': keyFile, 'd8:agentToken': randomToken(),
      'd8:slaves': JSON.stringify([{ name: 'n1', host: '127.0.0.1', user: 'd8' }]),
    });
    const err = await programMod.program({ D8_HOME: path.join(root, 'home'), D8_BUNDLE_DIR: bundle.dir }).catch((e: unknown) => e);
    expect(pulumi.RunError.isInstance(err)).toBe(true);
    expect((err as Error).message).toMatch(/^cannot reach the swarm manager d8@127\.0\.0\.1 port 9 over ssh: .*`ssh -p 9 d8@127\.0\.0\.1 docker info` must work without a prompt/);
  });

  it('checks key files before it spends time on the bundle', async () => {
    await mockEngine('prod');
    pulumi.runtime.setAllConfig({ 'd8:slaves': JSON.stringify(SLAVES), 'd8:agentToken': randomToken(), 'd8:sshKeyPath': path.join(root, 'missing-key') });
    const err = await programMod.program({ D8_HOME: path.join(root, 'home'), D8_BUNDLE_DIR: path.join(root, 'no-bundle-here') }).catch((e: unknown) => e);
    expect(pulumi.RunError.isInstance(err)).toBe(true);
    expect((err as Error).message).toMatch(/d8:sshKeyPath .*missing-key cannot be read \(ENOENT\)/);
  });

  it('gives a slave named in D8_SLAVE_BUNDLES that kept release, the others the fleet\'s bundle (a rollout step or a rollback)', async () => {
    const session = await mockEngine('dev', { state: engineState });
    const home = tempDir('d8-home-');
    try {
      const kept = await bundleFor(root, randomCommit());
      pulumi.runtime.setAllConfig({ 'd8:slaves': JSON.stringify([{ name: 'pi', host: 'local', agentPort: 7601 }, { name: 'nas', host: 'local', agentPort: 7602 }]) });
      const outputs = await programMod.program({ D8_HOME: home, D8_BUNDLE_DIR: bundle.dir, D8_SLAVE_BUNDLES: JSON.stringify({ nas: kept.dir }) }, { resourceOptions: session.resourceOptions });
      expect(outputs.commit).toBe(bundle.versionInfo.commit);
      const resources = await session.settle();
      const triggers = (name: string) => unwrap(resources.get(name)!.inputs.triggers) as unknown[];
      expect(triggers('pi-install').slice(0, 2)).toEqual([bundle.versionInfo.commit, bundle.hash]);
      expect(triggers('nas-install').slice(0, 2)).toEqual([kept.versionInfo.commit, kept.hash]);
      expect(String(resources.get('nas-bundle')!.inputs.create)).toContain(kept.hash.slice(0, 16));
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('refuses a D8_SLAVE_BUNDLES that is not JSON or names a slave not in the stack, naming the variable', async () => {
    await mockEngine('dev');
    const home = tempDir('d8-home-');
    try {
      pulumi.runtime.setAllConfig({ 'd8:slaves': JSON.stringify([{ name: 'pi', host: 'local' }]) });
      for (const [value, why] of [['nas=/tmp/x', /D8_SLAVE_BUNDLES must be a JSON object of slave name to bundle directory/], [JSON.stringify({ nas: bundle.dir }), /D8_SLAVE_BUNDLES names nas, not in d8:slaves: unset it/]] as const) {
        const err = await programMod.program({ D8_HOME: home, D8_BUNDLE_DIR: bundle.dir, D8_SLAVE_BUNDLES: value }).catch((e: unknown) => e);
        expect(pulumi.RunError.isInstance(err)).toBe(true);
        expect((err as Error).message).toMatch(why);
      }
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('refuses a prebuilt bundle that was edited after its build', async () => {
    await mockEngine('dev');
    const home = tempDir('d8-home-');
    const copy = path.join(root, 'edited');
    try {
      fs.cpSync(bundle.dir, copy, { recursive: true });
      fs.appendFileSync(path.join(copy, 'install.sh'), '\necho tampered\n');
      pulumi.runtime.setAllConfig({ 'd8:slaves': JSON.stringify([{ name: 'pi', host: 'local' }]) });
      const err = await programMod.program({ D8_HOME: home, D8_BUNDLE_DIR: copy }).catch((e: unknown) => e);
      expect(pulumi.RunError.isInstance(err)).toBe(true);
      expect((err as Error).message).toMatch(/does not match its BUNDLE_HASH/);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('the project and stack files', () => {
  const project = YAML.parse(fs.readFileSync(path.join(REPO, 'Pulumi.yaml'), 'utf8')) as Record<string, any>;

  it('name the project the URNs use and point main at the program file in infra/', () => {
    expect(project.name).toBe(PROJECT_NAME);
    expect(project.runtime.name).toBe('nodejs');
    // A file: with a directory, the language host takes the entry point from package.json's
    // main/exports, which are the library's (RequestsClient), and the program declares nothing.
    expect(project.main).toBe('infra/index.js');
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { main?: string };
    expect(pkg.main).not.toMatch(/infra/);
    const entry = fs.readFileSync(path.join(REPO, 'infra', 'index.js'), 'utf8');
    expect(entry).toMatch(/'dist', 'infra', 'program\.js'/);
    expect(fs.existsSync(path.join(REPO, 'infra', 'program.ts'))).toBe(true);
  });

  it('declare no typed d8: keys in Pulumi.yaml (Pulumi rejects schemas outside the project namespace)', () => {
    for (const [key, spec] of Object.entries((project.config ?? {}) as Record<string, any>)) {
      if (key.includes(':') && !key.startsWith(`${project.name}:`)) {
        expect({ key, keys: Object.keys(spec ?? {}) }).toEqual({ key, keys: ['value'] });
      }
    }
  });

  it('Pulumi.dev.yaml is one local slave that needs no secret', () => {
    const config = resolveFleetConfig(readStackFile(path.join(REPO, 'Pulumi.dev.yaml')), { stack: 'dev', env: {} });
    expect(config.slaves).toHaveLength(1);
    expect(config.slaves[0].local).toBe(true);
    expect(config.agentToken).toBeUndefined();
  });

  it('Pulumi.prod.example.yaml is a valid remote fleet', () => {
    const raw = readStackFile(path.join(REPO, 'Pulumi.prod.example.yaml'));
    const config = resolveFleetConfig(raw, { stack: 'prod', env: {} });
    expect(config.slaves.length).toBeGreaterThanOrEqual(2);
    expect(config.slaves.some((s) => !s.local)).toBe(true);
    expect(config.sshKeyPath).toBeDefined();
    expect(raw.agentToken).toBeUndefined();
  });

  it('stack files are validated, not trusted: a broken one names its key', () => {
    const file = path.join(root, 'Pulumi.broken.yaml');
    fs.writeFileSync(file, 'config:\n  d8:slaves:\n    - name: Bad_Name\n      host: local\n');
    expect(() => resolveFleetConfig(readStackFile(file), { stack: 'broken', env: {} }))
      .toThrow(ConfigError);
    expect(() => resolveFleetConfig(readStackFile(file), { stack: 'broken', env: {} }))
      .toThrow(/d8:slaves\[0\] \(Bad_Name\)\.name must be lowercase/);
  });
});
