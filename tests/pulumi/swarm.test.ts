/** Swarm mode under mocks: one global docker service through a provider on the manager, no per-host installs. */
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
import { engineState, KEYS, resolve, TOKEN, writeKeyFile } from './support/fleet-fixture';
import { isSecretInput, mockEngine, unwrap, valueOf, type Registered } from './support/mock-engine';

type FleetModule = typeof import('../../infra/fleet');
let fleetMod: FleetModule;
let root: string;
let bundle: BundleInfo;
let keyFile: string;

beforeAll(async () => {
  root = tempDir('d8-pulumi-swarm-');
  bundle = await bundleFor(root, randomCommit());
  keyFile = writeKeyFile(root, KEYS.privatePem);
  await mockEngine('swarm');
  fleetMod = require('../../infra/fleet') as FleetModule;
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function swarmConfig(extra: Record<string, unknown> = {}) {
  return resolve('swarm', {
    swarm: 'ssh://admin@manager.lan',
    sshKeyPath: keyFile,
    agentToken: TOKEN,
    slaves: [
      { name: 'manager', host: 'manager.lan', user: 'admin', agentPort: 7700 },
      { name: 'worker', host: 'worker.lan', user: 'admin', agentPort: 7700 },
    ],
    ...extra,
  });
}

describe('swarm mode', () => {
  let resources: Map<string, Registered>;
  let fleet: ReturnType<FleetModule['createFleet']>;
  const byType = (type: string) => [...resources.values()].filter((r) => r.type === type);

  beforeAll(async () => {
    const session = await mockEngine('swarm', { state: engineState });
    fleet = fleetMod.createFleet(swarmConfig(), bundle, { resourceOptions: session.resourceOptions });
    resources = await session.settle();
  });

  it('declares one global service and no per-host bundle or install', () => {
    expect([...resources.values()].map((r) => r.type).sort()).toEqual(
      [DOCKER_IMAGE_TYPE, DOCKER_PROVIDER_TYPE, DOCKER_SECRET_TYPE, DOCKER_SERVICE_TYPE, SWARM_AGENT_TYPE, SWARM_IMAGES_TYPE].sort());
    // The one command is the image clean-up on the manager, not an install.
    expect([...resources.values()].filter((r) => r.type.startsWith('command:')).map((r) => r.name)).toEqual(['swarm-images']);
    expect(fleet.hosts).toEqual({});
    const [service] = byType(DOCKER_SERVICE_TYPE);
    expect(service.inputs.mode).toEqual({ global: true });
  });

  it('names its resources with the URNs of infra/urns.ts', () => {
    const urns = swarmUrns('swarm');
    expect(byType(SWARM_AGENT_TYPE)[0].urn).toBe(urns.component);
    expect(byType(DOCKER_PROVIDER_TYPE)[0].urn).toBe(urns.provider);
    expect(byType(DOCKER_IMAGE_TYPE)[0].urn).toBe(urns.image);
    expect(byType(DOCKER_SECRET_TYPE)[0].urn).toBe(urns.token);
    expect(byType(DOCKER_SERVICE_TYPE)[0].urn).toBe(urns.service);
    expect(byType(SWARM_IMAGES_TYPE)[0].urn).toBe(urns.images);
  });

  it('is updated as one unit by every slave\'s deploy: all of the program\'s URNs, nothing replaced', () => {
    for (const slave of ['manager', 'worker']) {
      const o = upOptionsFor(deployUnit('swarm', slave, { swarm: true, local: false }));
      expect([...o.target].sort()).toEqual([...resources.values()].map((r) => r.urn).sort());
      expect(o.replace).toEqual([]);
    }
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
    const service = byType(DOCKER_SERVICE_TYPE)[0].inputs as Record<string, any>;
    expect(service.taskSpec.networksAdvanceds).toEqual([{ name: 'host' }]);
    expect(service.endpointSpec).toBeUndefined();
    expect(service.updateConfig.failureAction).toBe('rollback');
    expect(service.taskSpec.restartPolicy.condition).toBe('any');
    const health = service.taskSpec.containerSpec.healthcheck;
    expect(health.tests[0]).toBe('CMD');
    expect(health.tests.join(' ')).toContain('http://127.0.0.1:7700/api/health');
    expect(service.taskSpec.containerSpec.env).toEqual({
      D8_AGENT_PORT: '7700', D8_AGENT_TOKEN_FILE: '/run/secrets/d8-agent-token', D8_INSTALL_STRATEGY: 'docker',
    });
    expect(service.updateConfig.order).toBe('stop-first');
  });

  it('gives the token to the service only as a secret docker secret', () => {
    const secret = byType(DOCKER_SECRET_TYPE)[0];
    expect(isSecretInput(secret.inputs.data)).toBe(true);
    expect(Buffer.from(String(unwrap(secret.inputs.data)), 'base64').toString('utf8')).toBe(TOKEN);
    const service = byType(DOCKER_SERVICE_TYPE)[0].inputs as Record<string, any>;
    expect(service.taskSpec.containerSpec.secrets).toEqual([
      { secretId: 'swarm-token-id', secretName: 'swarm-token-4f2a9c1', fileName: 'd8-agent-token' },
    ]);
    const b64 = Buffer.from(TOKEN).toString('base64');
    for (const r of resources.values()) {
      if (r === secret) continue;
      const text = JSON.stringify(r.inputs);
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(b64);
    }
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
      worker: { endpoint: 'http://worker.lan:7700', strategy: 'docker', mode: 'swarm' },
    });
    expect(await valueOf(fleet.outputs.swarmService!)).toBe('d8-agent');
  });
});

describe('swarm image clean-up', () => {
  it('prunes to d8:swarmKeepImages after each new image and removes every image when destroyed, after the service', async () => {
    const session = await mockEngine('swarm', { state: engineState });
    fleetMod.createFleet(swarmConfig({ swarm: 'ssh://admin@manager.lan:2222', swarmKeepImages: 5 }), bundle, { resourceOptions: session.resourceOptions });
    const resources = await session.settle();
    const images = [...resources.values()].find((r) => r.type === SWARM_IMAGES_TYPE)!;
    const service = [...resources.values()].find((r) => r.type === DOCKER_SERVICE_TYPE)!;
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
    // The service depends on the clean-up, so a destroy deletes the service (and its tasks) first.
    expect(service.opts.dependsOn).toEqual(expect.arrayContaining([images.resource]));
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
      fleetMod.createFleet(swarmConfig(), b, { resourceOptions: session.resourceOptions, swarmPlatform: 'linux/arm64' });
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
    fleetMod.createFleet(swarmConfig({ swarmImage: 'registry.lan:5000/d8-agent' }), bundle, { resourceOptions: session.resourceOptions });
    const resources = await session.settle();
    const image = [...resources.values()].find((r) => r.type === DOCKER_IMAGE_TYPE)!.inputs as Record<string, any>;
    const service = [...resources.values()].find((r) => r.type === DOCKER_SERVICE_TYPE)!.inputs as Record<string, any>;
    expect(image.skipPush).toBe(false);
    expect(image.imageName).toMatch(/^registry\.lan:5000\/d8-agent:[0-9a-f]{12}-[0-9a-f]{12}$/);
    expect(service.taskSpec.containerSpec.image).toMatch(/^registry\.lan:5000\/d8-agent@sha256:[0-9a-f]{64}$/);
  });
});
