/**
 * The docker strategy on a host that cannot pull its base image (no registry answers here, so every
 * pull fails): the master ships the image over the deploy's SSH session into `docker load`, and the
 * build proceeds. Host: the "docker" test host (real sshd; its user drives this machine's engine).
 * The image tags are unique to the run and absent from that engine before the deploy.
 *  - from a cached tarball in D8_HOME/images;
 *  - from the master's own engine (`docker save`): a second dockerd on this machine stands for the
 *    master's engine, the only one holding the image;
 *  - neither: the deploy says what to do, and the docker strategy fails with install.sh's reason.
 */
import { execFileSync, spawnSync } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { buildBundle, type BundleInfo } from '../../agent/bundle/build';
import { DirectDeployer, type DeployProgress } from '../../master/deploy/direct';
import { imageFileStem } from '../../master/deploy/base-image';
import { probeInstalled } from '../support/agent-process';
import { describeTier } from '../support/tier';
import {
  BASE_IMAGE, containersForPort, fleetConfig, freePort, REPO, systemTier, tempDir, uninstallAsUser, upTestHosts, type TestHosts,
} from './support/hosts';
import { copyImageInto, startSecondEngine, type SecondEngine } from './support/second-engine';

jest.setTimeout(10 * 60 * 1000);

const hasImage = (image: string, env: NodeJS.ProcessEnv = process.env): boolean =>
  spawnSync('docker', ['image', 'inspect', image], { stdio: 'ignore', env }).status === 0;
const layers = (ref: string): string[] => JSON.parse(execFileSync('docker', ['image', 'inspect', '-f', '{{json .RootFS.Layers}}', ref], { encoding: 'utf8' })) as string[];

describeTier(systemTier, 'the docker base image shipped to a host that cannot pull it', () => {
  const run = crypto.randomBytes(4).toString('hex');
  const tagged = (what: string): string => `hf2-ship-base:${what}-${run}`;
  let th: TestHosts;
  let bundle: BundleInfo;
  let d8Home: string;
  let outRoot: string;
  let engine: SecondEngine | null = null;
  const ports: number[] = [];

  beforeAll(async () => {
    th = upTestHosts();
    d8Home = tempDir('d8-systest-img-home-');
    outRoot = tempDir('d8-systest-img-bundles-');
    bundle = await buildBundle({ outRoot });
  });

  afterAll(() => {
    if (th) for (const p of ports) uninstallAsUser(REPO, th.hosts.docker.user, p);
    for (const t of ['tarball', 'saved', 'nowhere'].map(tagged)) spawnSync('docker', ['rmi', t], { stdio: 'ignore' });
    engine?.stop();
    for (const d of [d8Home, outRoot]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  async function deploy(image: string, env: NodeJS.ProcessEnv) {
    const port = await freePort();
    ports.push(port);
    const config = fleetConfig(th, [{ name: 'dockerbox', host: th.hosts.docker, agentPort: port, strategies: ['docker'] }], { baseImage: image, installAttempts: 1 });
    const progress: DeployProgress[] = [];
    const deployer = new DirectDeployer({ config, bundle, env, healthTimeoutSeconds: 60, onProgress: (p) => progress.push(p) });
    const first = await deployer.deploy(config.slaves[0], { reason: 'systest' });
    return { port, config, first, progress, images: () => progress.filter((p) => p.phase === 'image').map((p) => p.message) };
  }

  /** The agent's container runs an image built on `image`: its layers start with the base's. */
  function expectAgentOn(image: string, port: number): void {
    const [container] = containersForPort(port);
    expect(container).toBe(`d8-agent-${port}`);
    expect(execFileSync('docker', ['inspect', '-f', '{{.State.Running}}', container], { encoding: 'utf8' }).trim()).toBe('true');
    // docker run caps the agent's logs (json-file, 2 x 5 MB): the engine's default keeps every line for ever.
    expect(JSON.parse(execFileSync('docker', ['inspect', '-f', '{{json .HostConfig.LogConfig}}', container], { encoding: 'utf8' }))).toEqual({ Type: 'json-file', Config: { 'max-size': '5m', 'max-file': '2' } });
    const agentImage = execFileSync('docker', ['inspect', '-f', '{{.Image}}', container], { encoding: 'utf8' }).trim();
    const base = layers(image);
    expect(layers(agentImage).slice(0, base.length)).toEqual(base);
  }

  it('from a cached tarball in D8_HOME/images: the pull fails, the tarball is loaded, the agent runs on it; the next deploy finds it present', async () => {
    const image = tagged('tarball');
    expect(hasImage(image)).toBe(false);
    const cache = path.join(d8Home, 'images');
    fs.mkdirSync(cache, { recursive: true });
    const tarball = path.join(cache, `${imageFileStem(image)}.tar.gz`);
    // The tarball is made from the local base under the test's tag, then the tag is removed again.
    execFileSync('sh', ['-c', 'docker tag "$1" "$2" && docker save "$2" | gzip -1 >"$3" && docker rmi "$2" >/dev/null', 'sh', BASE_IMAGE, image, tarball], { timeout: 300_000 });
    expect(hasImage(image)).toBe(false);

    const { first, images, port, config } = await deploy(image, { ...process.env, D8_HOME: d8Home });
    expect(first.error).toBeNull();
    expect(first).toMatchObject({ ok: true, status: 'deployed', strategy: 'docker', commit: bundle.versionInfo.commit });
    expect(images()).toEqual([
      `base image ${image}: not on the host; docker pull`,
      expect.stringMatching(new RegExp(`^base image ${image}: the host cannot pull it \\(.+\\); shipping it from the master \\(${tarball}\\) into docker load$`)),
      expect.stringMatching(new RegExp(`^base image ${image}: shipped from the master \\(${tarball}, [\\d.]+ MiB in [\\d.]+ s\\)$`)),
    ]);
    const log = JSON.parse(fs.readFileSync(first.buildLogPath!, 'utf8')) as { commands: Array<{ command: string; exit_code: number | null }> };
    expect(log.commands.map((c) => [c.command, c.exit_code])).toEqual(expect.arrayContaining([[`docker pull '${image}'`, 1], [`docker load < ${tarball}`, 0]]));
    expect(hasImage(image)).toBe(true);
    expectAgentOn(image, port);
    const h = await probeInstalled(th.hosts.docker.host, port);
    expect(h.ok && h.health.install_strategy).toBe('docker');

    const again: DeployProgress[] = [];
    const redeploy = new DirectDeployer({ config, bundle, env: { ...process.env, D8_HOME: d8Home }, healthTimeoutSeconds: 60, onProgress: (p) => again.push(p) });
    const second = await redeploy.deploy(config.slaves[0], { reason: 'systest', force: true });
    expect(second).toMatchObject({ ok: true, strategy: 'docker' });
    expect(again.filter((p) => p.phase === 'image').map((p) => p.message)).toEqual([`base image ${image}: already on the host`]);
  });

  it('from the master\'s own engine (docker save) when no tarball is cached', async () => {
    const image = tagged('saved');
    engine = await startSecondEngine('d8-master-engine-');
    copyImageInto(engine, BASE_IMAGE, image);
    const masterEnv = { ...process.env, D8_HOME: d8Home, DOCKER_HOST: engine.dockerHost };
    expect(hasImage(image, masterEnv)).toBe(true);
    expect(hasImage(image)).toBe(false);

    const { first, images, port } = await deploy(image, masterEnv);
    expect(first.error).toBeNull();
    expect(first).toMatchObject({ ok: true, status: 'deployed', strategy: 'docker' });
    expect(images()[1]).toMatch(new RegExp(`shipping it from the master \\(docker save ${image} on the master\\) into docker load$`));
    expect(images()[2]).toMatch(new RegExp(`^base image ${image}: shipped from the master \\(docker save ${image} on the master, [\\d.]+ MiB`));
    expect(hasImage(image)).toBe(true);
    expectAgentOn(image, port);
  });

  it('neither: the deploy says how to give the master a copy, and the docker strategy fails with install.sh\'s reason', async () => {
    const image = tagged('nowhere');
    const { first, images } = await deploy(image, { ...process.env, D8_HOME: d8Home });
    expect(first).toMatchObject({ ok: false, errorKind: 'install_failed' });
    expect(images()[1]).toMatch(new RegExp(`^base image ${image}: the host cannot pull it .* and the master has no copy to ship: on the master, \`docker pull ${image}\``));
    expect(first.attempts).toHaveLength(1);
    expect(first.attempts[0].stderr_tail).toMatch(/cannot be pulled here/);
    expect(hasImage(image)).toBe(false);
  });
});
