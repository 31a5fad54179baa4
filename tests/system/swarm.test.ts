/**
 * Swarm mode on a real single-node swarm (this machine's engine, `docker swarm init` on loopback):
 * the agent's global service is created with the docker CLI from the spec the Pulumi program
 * declares (support/swarm-cli.ts translates it), from images built from real bundles. The master's
 * convergence check talks to the manager over real ssh (the d8-docker test host, a docker-group
 * user on this engine) and to the real agents: a good release converges, a release whose agent
 * exits at start-up is rolled back by the swarm and the check fails naming the rollback, and a
 * forced deploy (a slave's restart) restarts the task and converges again.
 */
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { buildBundle } from '../../agent/bundle/build';
import { resolveFleetConfig, type FleetConfig } from '../../core/stack-config';
import { managerDocker, swarmNodes, swarmPlatform, type DockerRunner } from '../../infra/swarm-docker';
import { stageSwarmContext } from '../../infra/swarm-context';
import { parseSwarmManager, swarmImageName, swarmServiceSpec, type SwarmServiceSpec } from '../../infra/swarm-spec';
import { probeInstalled } from '../support/agent-process';
import { awaitSwarmConvergence, SwarmConvergenceError } from '../../master/deploy/swarm/convergence';
import { settleSwarm } from '../../master/deploy/pulumi/swarm-settle';
import { describeTier } from '../support/tier';
import { docker, dockerQuiet, ensureSwarm, serviceCreateArgs, serviceUpdateArgs } from './support/swarm-cli';
import { BASE_IMAGE, freePort, randomToken, systemTier, tempDir, upTestHosts, type TestHosts } from './support/hosts';

const id = crypto.randomBytes(3).toString('hex');
const REPO = `sw-agent-${id}`;
const SERVICE = `sw-agent-${id}`;
const SECRET = `sw-token-${id}`;
const commitA = crypto.randomBytes(20).toString('hex');
const commitB = crypto.randomBytes(20).toString('hex');
const versionInfo = (commit: string) => ({ branch: 'main', commit, version: '0.1.0', deployed_at: new Date().toISOString(), dirty: false });

jest.setTimeout(600_000);

describeTier(systemTier, 'swarm mode on a real single-node swarm', () => {
  let root: string;
  let th: TestHosts;
  let config: FleetConfig;
  let manager: DockerRunner;
  let port: number;
  const images: string[] = [];
  let secret: { id: string; name: string };
  let good: SwarmServiceSpec;
  let bad: SwarmServiceSpec;

  /** Builds the program's context for a release (optionally with a broken agent) into an image. */
  async function releaseImage(commit: string, breakAgent: boolean): Promise<{ image: string; hash: string }> {
    const b = await buildBundle({ outRoot: path.join(root, 'bundles'), versionInfo: versionInfo(commit) });
    let context = stageSwarmContext(b, path.join(root, 'stage'));
    if (breakAgent) {
      const copy = path.join(root, `broken-${commit.slice(0, 7)}`);
      fs.cpSync(context, copy, { recursive: true });
      fs.writeFileSync(path.join(copy, 'agent.js'), "console.error('d8-agent: cannot start (a broken release)'); process.exit(3);\n");
      context = copy;
    }
    const image = swarmImageName(REPO, commit, b.hash);
    // This engine has no docker0 bridge for RUN steps: the build uses the host's network.
    docker(['build', '-q', '--network', 'host', '--build-arg', `BASE_IMAGE=${BASE_IMAGE}`, '-t', image, context]);
    images.push(image);
    return { image, hash: b.hash };
  }

  beforeAll(async () => {
    root = tempDir('d8-swarm-');
    ensureSwarm();
    th = upTestHosts();
    port = await freePort();
    const h = th.hosts.docker;
    const knownHosts = path.join(root, 'known_hosts');
    fs.writeFileSync(knownHosts, `${h.port === 22 ? h.host : `[${h.host}]:${h.port}`} ${h.hostKey}\n`);
    config = resolveFleetConfig({
      swarm: `ssh://${h.user}@${h.host}:${h.port}`,
      sshKeyPath: th.key,
      agentToken: randomToken(),
      slaves: [{ name: 'node1', host: '127.0.0.1', user: 'root', agentPort: port }],
    }, { stack: 'swarmtest', env: {} });
    manager = managerDocker(parseSwarmManager(config.swarm!), { sshKeyPath: th.key, sshOptions: ['-o', `UserKnownHostsFile=${knownHosts}`] });

    const token = config.agentToken!;
    const secretId = docker(['secret', 'create', SECRET, '-'], token).trim();
    secret = { id: secretId, name: SECRET };
    const a = await releaseImage(commitA, false);
    const b = await releaseImage(commitB, true);
    good = { ...swarmServiceSpec({ image: a.image, secret, agentPort: port, commit: commitA, bundleHash: a.hash }), name: SERVICE };
    bad = { ...swarmServiceSpec({ image: b.image, secret, agentPort: port, commit: commitB, bundleHash: b.hash }), name: SERVICE };
  });

  afterAll(() => {
    dockerQuiet(['service', 'rm', SERVICE]);
    // The service's containers go asynchronously; the secret and images follow them.
    for (let i = 0; i < 30 && docker(['ps', '-aq', '--filter', `label=com.docker.swarm.service.name=${SERVICE}`]).trim(); i++) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
    }
    dockerQuiet(['secret', 'rm', SECRET]);
    for (const img of images) dockerQuiet(['image', 'rm', img]);
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('reads the nodes\' platform from the manager over ssh and builds for it', async () => {
    const nodes = await swarmNodes(manager);
    expect(nodes.length).toBeGreaterThanOrEqual(1);
    const expected = { x64: 'linux/amd64', arm64: 'linux/arm64', arm: 'linux/arm/v7' }[os.arch() as 'x64' | 'arm64' | 'arm'];
    expect(swarmPlatform(nodes)).toBe(expected);
  });

  it('a good release converges: every node runs it and the agent reports its commit', async () => {
    docker(serviceCreateArgs(good));
    const progress: string[] = [];
    const report = await awaitSwarmConvergence({ docker: manager, service: SERVICE, commit: commitA, slaves: config.slaves, pollMs: 1000, onProgress: (w) => progress.push(w) });
    expect(report.why).toContain(commitA.slice(0, 7));
    // Independently of the check: the agent answers on the node's address with the release's commit.
    const h = await probeInstalled('127.0.0.1', port);
    expect(h.ok && h.health.commit).toBe(commitA);
    expect(h.ok && h.health.install_strategy).toBe('docker');
    // The token reached the task only as a secret file.
    const env = docker(['service', 'inspect', SERVICE, '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Env}}']);
    expect(env).not.toContain(config.agentToken!);
  });

  it('a release whose agent exits is rolled back by the swarm, and the check fails naming the rollback', async () => {
    docker(serviceUpdateArgs(good, bad));
    const err = await awaitSwarmConvergence({ docker: manager, service: SERVICE, commit: commitB, slaves: config.slaves, pollMs: 1000 })
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(SwarmConvergenceError);
    const e = err as SwarmConvergenceError;
    expect(e.reason).toBe('rolled_back');
    expect(e.kind).toBe('install_failed');
    expect(e.message).toMatch(new RegExp(`rolled service ${SERVICE} back \\(rollback_(started|paused|completed)`));
    expect(e.message).toContain(`release ${commitB.slice(0, 7)} is not running`);
    expect(e.message).toContain('non-zero exit (3)');
    // The rollback brings the previous release back, and the check says so for it.
    const back = await awaitSwarmConvergence({ docker: manager, service: SERVICE, commit: commitA, slaves: config.slaves, pollMs: 1000 });
    expect(back.why).toContain(commitA.slice(0, 7));
    const deadline = Date.now() + 120_000;
    let h = await probeInstalled('127.0.0.1', port);
    while (!(h.ok && h.health.commit === commitA) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      h = await probeInstalled('127.0.0.1', port);
    }
    expect(h.ok && h.health.commit).toBe(commitA);
  });

  it('a forced deploy leaves a converged fleet alone, and restarts the task of an agent that does not answer', async () => {
    const running = (): string => docker(['service', 'ps', SERVICE, '-q', '--filter', 'desired-state=running']).trim();
    const first = running();
    const calm = await settleSwarm(config, { commit: { value: commitA } }, { force: true, changed: false }, { docker: manager, service: SERVICE, pollMs: 1000 });
    expect(calm.forced).toBe(false);
    expect(running()).toBe(first);

    // A hung agent (its container frozen): the slave is dead to the master, its task still "running" to the swarm.
    const container = docker(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${SERVICE}`]).trim();
    docker(['pause', container]);
    expect((await probeInstalled('127.0.0.1', port, 2000)).ok).toBe(false);
    const settled = await settleSwarm(config, { commit: { value: commitA } }, { force: true, changed: false }, { docker: manager, service: SERVICE, pollMs: 1000 });
    expect(settled.forced).toBe(true);
    expect(running()).not.toBe(first);
    const h = await probeInstalled('127.0.0.1', port);
    expect(h.ok && h.health.commit).toBe(commitA);
  });
});
