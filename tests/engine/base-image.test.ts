/**
 * The pulumi path of the docker strategy's base image: `d8 up --engine pulumi` (real CLI, real
 * engine) onto the "docker" SSH test host with a base image that host's engine lacks and cannot
 * pull (no registry answers here): the deployer ships it from the master's cached tarball over SSH
 * before `pulumi up`, says so, and the program's install builds the agent image on it.
 */
import { execFileSync, spawnSync } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { buildBundle } from '../../agent/bundle/build';
import type { DeployResult } from '../../core/deploy-result';
import { imageFileStem } from '../../master/deploy/base-image';
import { runD8 } from '../support/run-process';
import { describeTier } from '../support/tier';
import { BASE_IMAGE, containersForPort, freePort, randomToken, REPO, uninstallAsUser, upTestHosts } from '../system/support/hosts';
import { createFleetProject, engineEnv, engineHostsTier, writeStackFile } from './support/fleet-project';
import { localBackendEnv, pulumiToolchain } from './support/toolchain';

jest.setTimeout(10 * 60_000);

const hasImage = (image: string): boolean => spawnSync('docker', ['image', 'inspect', image], { stdio: 'ignore' }).status === 0;

describeTier(engineHostsTier, 'd8 up --engine pulumi: the base image shipped from the master', () => {
  const image = `hf2-ship-base:pulumi-${crypto.randomBytes(4).toString('hex')}`;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-engine-img-'));
  const backend = localBackendEnv('d8-engine-img-backend-');
  let user = '';
  let port = 0;

  afterAll(() => {
    if (user) uninstallAsUser(REPO, user, port);
    spawnSync('docker', ['rmi', image], { stdio: 'ignore' });
    for (const d of [work, backend.dir]) fs.rmSync(d, { recursive: true, force: true });
  });

  it('pull fails, the cached tarball is loaded over SSH before the up, the agent runs in a container built on it', async () => {
    const th = upTestHosts();
    const h = th.hosts.docker;
    user = h.user;
    port = await freePort();
    const project = createFleetProject(path.join(work, 'project'));
    const bundle = await buildBundle({ outRoot: path.join(work, 'bundles') });
    writeStackFile(project.dir, 'img', {
      sshKeyPath: th.key, installAttempts: 1, installDelaySeconds: 1, baseImage: image,
      slaves: [{ name: 'dockerbox', host: h.host, user: h.user, sshPort: h.port, agentPort: port, strategies: ['docker'], hostKey: h.hostKey }],
    });
    const home = path.join(work, 'home');
    fs.mkdirSync(path.join(home, 'images'), { recursive: true });
    const tarball = path.join(home, 'images', `${imageFileStem(image)}.tar.gz`);
    execFileSync('sh', ['-c', 'docker tag "$1" "$2" && docker save "$2" | gzip -1 >"$3" && docker rmi "$2" >/dev/null', 'sh', BASE_IMAGE, image, tarball], { timeout: 300_000 });
    expect(hasImage(image)).toBe(false);
    fs.mkdirSync(path.join(work, 'tmp'));
    const env = engineEnv(pulumiToolchain().env, backend.env, {
      D8_HOME: home, D8_AGENT_TOKEN: randomToken(), D8_BUNDLE_DIR: bundle.dir, TMPDIR: path.join(work, 'tmp'), D8_SSH_KEY_PATH: '', D8_SSH_PRIVATE_KEY: '',
    });

    const up = await runD8(REPO, ['up', '--stack', 'img', '--dir', project.dir, '--engine', 'pulumi', '--json'], env);
    if (up.code !== 0) throw new Error(`d8 up --engine pulumi exited ${up.code}:\n${up.stdout}\n${up.stderr}`);
    const [r] = JSON.parse(up.stdout) as DeployResult[];
    expect(r).toMatchObject({ status: 'deployed', strategy: 'docker', commit: bundle.versionInfo.commit });
    expect(up.stderr).toMatch(new RegExp(`\\[dockerbox\\] image +base image ${image}: not on the host; docker pull`));
    expect(up.stderr).toMatch(new RegExp(`\\[dockerbox\\] image +base image ${image}: shipped from the master \\(${tarball}, [\\d.]+ MiB in [\\d.]+ s\\)`));
    const log = fs.readFileSync(r.buildLogPath!, 'utf8');
    expect(log).toContain(`docker load < ${tarball}`);
    expect(hasImage(image)).toBe(true);
    const [container] = containersForPort(port);
    const layers = (ref: string): string[] => JSON.parse(execFileSync('docker', ['image', 'inspect', '-f', '{{json .RootFS.Layers}}', ref], { encoding: 'utf8' })) as string[];
    const base = layers(image);
    expect(layers(execFileSync('docker', ['inspect', '-f', '{{.Image}}', container], { encoding: 'utf8' }).trim()).slice(0, base.length)).toEqual(base);
  });
});
