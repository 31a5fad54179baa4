/** Swarm mode under mocks: one global docker service through a provider on the manager, no per-host installs. */
import fs from 'fs';
import type { BundleInfo } from '../../agent/bundle/build';
import {
  DOCKER_IMAGE_TYPE, DOCKER_PROVIDER_TYPE, DOCKER_SECRET_TYPE, DOCKER_SERVICE_TYPE, SWARM_AGENT_TYPE, swarmUrns,
} from '../../infra/urns';
import { bundleFor, randomCommit, tempDir } from './support/fixtures';
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
      [DOCKER_IMAGE_TYPE, DOCKER_PROVIDER_TYPE, DOCKER_SECRET_TYPE, DOCKER_SERVICE_TYPE, SWARM_AGENT_TYPE].sort());
    expect([...resources.values()].filter((r) => r.type.startsWith('command:'))).toEqual([]);
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

  it('publishes the agent port in host mode, restarts tasks and health-checks /api/health', () => {
    const service = byType(DOCKER_SERVICE_TYPE)[0].inputs as Record<string, any>;
    expect(service.endpointSpec.ports).toEqual([{ targetPort: 7700, publishedPort: 7700, publishMode: 'host', protocol: 'tcp' }]);
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
    expect(image.build.context).toBe(bundle.dir);
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
