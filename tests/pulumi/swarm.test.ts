/** Swarm mode under mocks: per slave a docker service pinned to its node with its own token secret, through a provider on the manager; no per-host installs. */
import fs from 'fs';
import path from 'path';
import { buildBundle, type BundleInfo } from '../../agent/bundle/build';
import {
  deployUnit, DOCKER_IMAGE_TYPE, DOCKER_PROVIDER_TYPE, DOCKER_SECRET_TYPE, DOCKER_SERVICE_TYPE, SWARM_AGENT_TYPE, SWARM_IMAGES_TYPE, swarmUrns,
} from '../../infra/urns';
import { IMAGE_CLEANUP_SCRIPT } from '../../infra/swarm-images';
import { SWARM_CONTEXT_FILES } from '../../infra/swarm-context';
import { upOptionsFor } from '../../master/deploy/pulumi/up-options';
import { bundleFor, randomCommit, tempDir, versionInfo } from './support/fixtures';
import { engineState, KEYS, resolve, writeKeyFile } from './support/fleet-fixture';
import { SlaveTokens } from '../../core/slave-tokens';
import type { SwarmNode } from '../../infra/swarm-docker';
import { isSecretInput, mockEngine, unwrap, valueOf, type Registered } from './support/mock-engine';

type FleetModule = typeof import('../../infra/fleet');
let fleetMod: FleetModule;
let root: string;
let bundle: BundleInfo;
let keyFile: string;
let tokens: SlaveTokens;

/** The manager's answer to `docker node inspect`: two amd64 nodes. */
const NODES: SwarmNode[] = [
  { id: 'n1manager0000000000000000', hostname: 'manager.lan', addr: '10.0.0.1', os: 'linux', architecture: 'x86_64' },
  { id: 'n2worker00000000000000000', hostname: 'worker', addr: '10.0.0.2', os: 'linux', architecture: 'x86_64' },
];

beforeAll(async () => {
  root = tempDir('d8-pulumi-swarm-');
  bundle = await bundleFor(root, randomCommit());
  keyFile = writeKeyFile(root, KEYS.privatePem);
  tokens = new SlaveTokens(path.join(root, 'tokens'), 'swarm');
  await mockEngine('swarm');
  fleetMod = require('../../infra/fleet') as FleetModule;
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/** No fleet token: manager.lan is a node's hostname, worker.lan names its node with swarmNode (its address). */
function swarmConfig(extra: Record<string, unknown> = {}) {
  return resolve('swarm', {
    swarm: 'ssh://admin@manager.lan',
    sshKeyPath: keyFile,
    slaves: [
      { name: 'manager', host: 'manager.lan', user: 'admin', agentPort: 7700 },
      { name: 'worker', host: 'worker.lan', user: 'admin', agentPort: 7701, swarmNode: '10.0.0.2' },
    ],
    ...extra,
  });
}

const swarmOpts = (session: { resourceOptions: import('@pulumi/pulumi').ComponentResourceOptions }) =>
  ({ resourceOptions: session.resourceOptions, slaveTokens: tokens, swarmNodes: NODES });

describe('swarm mode', () => {
  let resources: Map<string, Registered>;
  let fleet: ReturnType<FleetModule['createFleet']>;
  const byType = (type: string) => [...resources.values()].filter((r) => r.type === type);

  beforeAll(async () => {
    const session = await mockEngine('swarm', { state: engineState });
    fleet = fleetMod.createFleet(swarmConfig(), bundle, swarmOpts(session));
    resources = await session.settle();
  });

  const serviceOf = (slave: string) => byType(DOCKER_SERVICE_TYPE).find((r) => r.name === `swarm-service-${slave}`)!.inputs as Record<string, any>;

  it('declares a service per slave, pinned to the slave\'s node, and no per-host bundle or install', () => {
    expect([...resources.values()].map((r) => r.type).sort()).toEqual(
      [DOCKER_IMAGE_TYPE, DOCKER_PROVIDER_TYPE, DOCKER_SECRET_TYPE, DOCKER_SECRET_TYPE, DOCKER_SERVICE_TYPE, DOCKER_SERVICE_TYPE, SWARM_AGENT_TYPE, SWARM_IMAGES_TYPE].sort());
    // The one command is the image clean-up on the manager, not an install.
    expect([...resources.values()].filter((r) => r.type.startsWith('command:')).map((r) => r.name)).toEqual(['swarm-images']);
    expect(fleet.hosts).toEqual({});
    for (const [slave, node] of [['manager', NODES[0].id], ['worker', NODES[1].id]]) {
      const service = serviceOf(slave);
      expect(service.name).toBe(`d8-agent-${slave}`);
      expect(service.mode).toEqual({ replicated: { replicas: 1 } });
      expect(service.taskSpec.placement).toEqual({ constraints: [`node.id==${node}`] });
      expect(service.labels).toEqual(expect.arrayContaining([{ label: 'd8.slave', value: slave }]));
    }
  });

  it('names its resources with the URNs of infra/urns.ts', () => {
    const urns = swarmUrns('swarm', ['manager', 'worker']);
    expect(byType(SWARM_AGENT_TYPE)[0].urn).toBe(urns.component);
    expect(byType(DOCKER_PROVIDER_TYPE)[0].urn).toBe(urns.provider);
    expect(byType(DOCKER_IMAGE_TYPE)[0].urn).toBe(urns.image);
    expect(byType(DOCKER_SECRET_TYPE).map((r) => r.urn).sort()).toEqual(Object.values(urns.tokens).sort());
    expect(byType(DOCKER_SERVICE_TYPE).map((r) => r.urn).sort()).toEqual(Object.values(urns.services).sort());
    expect(byType(SWARM_IMAGES_TYPE)[0].urn).toBe(urns.images);
  });

  it('is updated as one unit by every slave\'s deploy: all of the program\'s URNs, nothing replaced', () => {
    for (const slave of ['manager', 'worker']) {
      const o = upOptionsFor(deployUnit('swarm', slave, { swarm: true, local: false, slaves: ['manager', 'worker'] }));
      expect([...o.target].sort()).toEqual([...resources.values()].map((r) => r.urn).sort());
      expect(o.replace).toEqual([]);
    }
  });

  it('migrates from the one global service: the first up also targets its service and fleet-token secret (and a removed slave\'s), so it deletes them', () => {
    const urns = swarmUrns('swarm', ['manager', 'worker']);
    const removed = swarmUrns('swarm', ['gone']);
    const existing = new Set([urns.component, urns.image, urns.legacy.service, urns.legacy.token, removed.services.gone, removed.tokens.gone,
      'urn:pulumi:swarm::d8-fleet::d8:fleet:SlaveHost::pc']);
    const o = upOptionsFor(deployUnit('swarm', 'manager', { swarm: true, local: false, slaves: ['manager', 'worker'] }), { existing });
    expect([...o.target].sort()).toEqual([...[...resources.values()].map((r) => r.urn), urns.legacy.service, urns.legacy.token, removed.services.gone, removed.tokens.gone].sort());
    expect(urns.legacy.service).toBe('urn:pulumi:swarm::d8-fleet::d8:fleet:SwarmAgent$docker:index/service:Service::swarm-service');
    expect(o.target).not.toContain('urn:pulumi:swarm::d8-fleet::d8:fleet:SlaveHost::pc');
  });

  it('talks to the manager over ssh, never prompting, with the configured key', () => {
    const provider = byType(DOCKER_PROVIDER_TYPE)[0].inputs;
    expect(provider.host).toBe('ssh://admin@manager.lan');
    const opts = JSON.parse(String(provider.sshOpts)) as string[];
    expect(opts.join(' ')).toContain('-o BatchMode=yes');
    expect(opts.join(' ')).toContain(`-i ${keyFile}`);
    for (const r of resources.values()) {
      if (r.type.startsWith('docker:')) expect(r.opts.provider).toBe(byType(DOCKER_PROVIDER_TYPE)[0].resource);
    }
  });

  it('runs the agent on each node\'s host network, restarts tasks, rolls back a failed update and health-checks /api/health', () => {
    const service = serviceOf('manager');
    expect(service.taskSpec.networksAdvanceds).toEqual([{ name: 'host' }]);
    expect(service.endpointSpec).toBeUndefined();
    expect(service.updateConfig.failureAction).toBe('rollback');
    expect(service.taskSpec.restartPolicy.condition).toBe('any');
    // Its logs are capped (json-file, 2 x 5 MB): the engine's default keeps every line for ever.
    expect(service.taskSpec.logDriver).toEqual({ name: 'json-file', options: { 'max-size': '5m', 'max-file': '2' } });
    const health = service.taskSpec.containerSpec.healthcheck;
    expect(health.tests[0]).toBe('CMD');
    // HTTPS on the agent's own loopback, its self-signed certificate not verified.
    expect(health.tests.join(' ')).toContain("require('https').get({host:'127.0.0.1',port:7700,path:'/api/health',rejectUnauthorized:false}");
    expect(service.taskSpec.containerSpec.env).toEqual({
      D8_AGENT_PORT: '7700', D8_AGENT_TOKEN_FILE: '/run/secrets/d8-agent-token', D8_INSTALL_STRATEGY: 'docker', D8_TLS_DIR: '/var/lib/d8-agent/tls', D8_LOG_FORMAT: 'json',
    });
    // Each slave's key pair on its own named volume on its node, where D8_TLS_DIR points.
    expect(service.taskSpec.containerSpec.mounts).toEqual([{ type: 'volume', source: 'd8-agent-tls-manager', target: '/var/lib/d8-agent/tls' }]);
    expect(serviceOf('worker').taskSpec.containerSpec.mounts[0].source).toBe('d8-agent-tls-worker');
    expect(service.updateConfig.order).toBe('stop-first');
    // Each slave's agent listens on its own agentPort.
    expect(serviceOf('worker').taskSpec.containerSpec.env.D8_AGENT_PORT).toBe('7701');
  });

  it('gives each slave\'s service only that slave\'s own token (from D8_HOME/tokens), as a secret docker secret', () => {
    const own = { manager: tokens.read('manager')!.current, worker: tokens.read('worker')!.current };
    expect(own.manager).not.toBe(own.worker);
    for (const slave of ['manager', 'worker'] as const) {
      const secret = byType(DOCKER_SECRET_TYPE).find((r) => r.name === `swarm-token-${slave}`)!;
      expect(isSecretInput(secret.inputs.data)).toBe(true);
      expect(Buffer.from(String(unwrap(secret.inputs.data)), 'base64').toString('utf8')).toBe(own[slave]);
      expect(serviceOf(slave).taskSpec.containerSpec.secrets).toEqual([
        { secretId: `swarm-token-${slave}-id`, secretName: `swarm-token-${slave}-4f2a9c1`, fileName: 'd8-agent-token' },
      ]);
      const b64 = Buffer.from(own[slave]).toString('base64');
      for (const r of resources.values()) {
        if (r === secret) continue;
        const text = JSON.stringify(r.inputs);
        expect(text).not.toContain(own[slave]);
        expect(text).not.toContain(b64);
      }
    }
  });

  it('refuses a slave on no node of the swarm, naming the fix, before declaring anything', () => {
    const config = swarmConfig({ slaves: [{ name: 'laptop', host: 'laptop.lan', user: 'admin' }] });
    expect(() => fleetMod.validateFleet(config, { slaveTokens: tokens, swarmNodes: NODES })).toThrow(
      /^d8:slaves\[0\] \(laptop\): no swarm node has the hostname or address "laptop\.lan" \(nodes: manager\.lan \(10\.0\.0\.1, id n1manager000\), worker \(10\.0\.0\.2, id n2worker0000\)\): set d8:slaves\[0\]\.swarmNode to the hostname of the node its agent runs on/);
    const named = swarmConfig({ slaves: [{ name: 'laptop', host: 'laptop.lan', user: 'admin', swarmNode: 'laptop' }] });
    expect(() => fleetMod.validateFleet(named, { slaveTokens: tokens, swarmNodes: NODES })).toThrow('d8:slaves[0].swarmNode (laptop) "laptop" is no node of the swarm');
    // Two slaves on one node (by hostname and by address) on one port: the second could never bind it.
    const shared = swarmConfig({ slaves: [{ name: 'a', host: 'manager.lan', user: 'admin' }, { name: 'b', host: '10.0.0.1', user: 'admin' }] });
    expect(() => fleetMod.validateFleet(shared, { slaveTokens: tokens, swarmNodes: NODES })).toThrow(
      'd8:slaves[1] (b) runs on swarm node manager.lan like a, on the same agentPort 7600: give one of them another d8:slaves[].agentPort (one port is bound once per node)');
  });

  it('builds the image on the manager from the bundle, tagged by commit and content', () => {
    const image = byType(DOCKER_IMAGE_TYPE)[0].inputs as Record<string, any>;
    expect(image.imageName).toBe(`d8-agent:${bundle.versionInfo.commit.slice(0, 12)}-${bundle.hash.slice(0, 12)}`);
    expect(fs.readdirSync(image.build.context).sort()).toEqual([...SWARM_CONTEXT_FILES].sort());
    for (const f of ['agent.js', 'Dockerfile', 'requirements.txt']) {
      expect(fs.readFileSync(path.join(image.build.context, f)).equals(fs.readFileSync(path.join(bundle.dir, f)))).toBe(true);
    }
    expect(image.build.dockerfile).toBe(path.join(image.build.context, 'Dockerfile'));
    expect(image.skipPush).toBe(true);
    const service = byType(DOCKER_SERVICE_TYPE)[0].inputs as Record<string, any>;
    expect(service.taskSpec.containerSpec.image).toBe(image.imageName);
  });

  it('outputs every slave as a docker agent on its own address', async () => {
    expect(await valueOf(fleet.outputs.slaves)).toEqual({
      manager: { endpoint: 'http://manager.lan:7700', strategy: 'docker', mode: 'swarm' },
      worker: { endpoint: 'http://worker.lan:7701', strategy: 'docker', mode: 'swarm' },
    });
    expect(await valueOf(fleet.outputs.swarmServices!)).toEqual({ manager: 'd8-agent-manager', worker: 'd8-agent-worker' });
  });
});

describe('swarm image clean-up', () => {
  it('prunes to d8:swarmKeepImages after each new image and removes every image when destroyed, after the service', async () => {
    const session = await mockEngine('swarm', { state: engineState });
    fleetMod.createFleet(swarmConfig({ swarm: 'ssh://admin@manager.lan:2222', swarmKeepImages: 5 }), bundle, swarmOpts(session));
    const resources = await session.settle();
    const images = [...resources.values()].find((r) => r.type === SWARM_IMAGES_TYPE)!;
    const services = [...resources.values()].filter((r) => r.type === DOCKER_SERVICE_TYPE);
    const image = [...resources.values()].find((r) => r.type === DOCKER_IMAGE_TYPE)!;
    const inputs = images.inputs as Record<string, any>;
    expect(inputs.stdin).toBe(IMAGE_CLEANUP_SCRIPT);
    expect(inputs.create).toMatch(/^'ssh' '-o' 'BatchMode=yes' .* '-p' '2222' 'admin@manager\.lan' '--' 'sh' '-s' '--' .*'prune'.* .*'d8-agent'.* .*'5'/);
    expect(inputs.create).toContain(`'-i' '${keyFile}'`);
    expect(inputs.delete).toContain(`'remove-all'`);
    // A new image changes the environment: an update, which runs create again (a prune), never a replace.
    expect(inputs.environment).toEqual({ D8_SWARM_IMAGE: (image.inputs as Record<string, any>).imageName });
    expect(inputs.triggers).toBeUndefined();
    expect(images.opts.dependsOn).toEqual([image.resource]);
    // Every service depends on the clean-up, so a destroy deletes the services (and their tasks) first.
    expect(services).toHaveLength(2);
    for (const service of services) expect(service.opts.dependsOn).toEqual(expect.arrayContaining([images.resource]));
  });
});

describe('swarm image build context', () => {
  it('is byte-identical across two runs of the program for one release (no build time inside)', async () => {
    const commit = randomCommit();
    const runs: Array<{ inputs: Record<string, any>; files: Record<string, string>; deployedAt: string }> = [];
    for (const at of ['2026-01-01T10:00:00.000Z', '2026-06-30T23:59:59.000Z']) {
      // Each run builds its own bundle, as `pulumi up` does: same tree, another deployed_at.
      const b = await buildBundle({ outRoot: tempDir('d8-swarm-run-'), versionInfo: { ...versionInfo(commit), deployed_at: at } });
      expect(b.versionInfo.deployed_at).toBe(at);
      const session = await mockEngine('swarm', { state: engineState });
      fleetMod.createFleet(swarmConfig(), b, { ...swarmOpts(session), swarmNodes: NODES.map((n) => ({ ...n, architecture: 'aarch64' })) });
      const image = [...(await session.settle()).values()].find((r) => r.type === DOCKER_IMAGE_TYPE)!;
      const inputs = image.inputs as Record<string, any>;
      const files = Object.fromEntries(fs.readdirSync(inputs.build.context).sort()
        .map((f) => [f, fs.readFileSync(path.join(inputs.build.context, f)).toString('base64')]));
      runs.push({ inputs, files, deployedAt: at });
    }
    expect(runs[1].inputs).toEqual(runs[0].inputs);
    expect(runs[1].files).toEqual(runs[0].files);
    expect(runs[0].inputs.build.platform).toBe('linux/arm64');
    const version = JSON.parse(Buffer.from(runs[0].files['version_info.json'], 'base64').toString('utf8'));
    expect(version).toEqual({ branch: 'main', commit, version: '0.1.0', dirty: false });
    for (const r of runs) {
      for (const content of Object.values(runs[0].files)) expect(Buffer.from(content, 'base64').toString('utf8')).not.toContain(r.deployedAt.slice(0, 19));
    }
  });
});

describe('swarm mode with a registry', () => {
  it('pushes the image and runs it by digest', async () => {
    const session = await mockEngine('swarm', { state: engineState });
    fleetMod.createFleet(swarmConfig({ swarmImage: 'registry.lan:5000/d8-agent' }), bundle, swarmOpts(session));
    const resources = await session.settle();
    const image = [...resources.values()].find((r) => r.type === DOCKER_IMAGE_TYPE)!.inputs as Record<string, any>;
    expect(image.skipPush).toBe(false);
    expect(image.imageName).toMatch(/^registry\.lan:5000\/d8-agent:[0-9a-f]{12}-[0-9a-f]{12}$/);
    for (const service of [...resources.values()].filter((r) => r.type === DOCKER_SERVICE_TYPE)) {
      expect((service.inputs as Record<string, any>).taskSpec.containerSpec.image).toMatch(/^registry\.lan:5000\/d8-agent@sha256:[0-9a-f]{64}$/);
    }
  });
});
