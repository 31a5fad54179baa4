/**
 * Swarm mode on a real single-node swarm (this machine's engine, `docker swarm init` on loopback):
 * each slave's service is created with the docker CLI from the spec the Pulumi program declares
 * (support/swarm-cli.ts translates it), pinned to the node the program resolves for the slave and
 * holding the slave's own token as a docker secret, from images built from real bundles. Two slaves
 * share the one node on two agent ports (one port is bound once per node), so slave A's token can be
 * tried against slave B's agent: 401. The master's convergence check talks to the manager over real
 * ssh (the d8-docker test host, a docker-group user on this engine) and to the real agents: a good
 * release converges on both, a release whose agent exits at start-up is rolled back by the swarm and
 * the check fails naming the slave's service, and a forced deploy restarts only the service of the
 * slave whose agent does not answer. Each agent serves HTTPS with a key pair on its slave's volume on
 * the node: the master reads its fingerprint from the task's start-up line on the manager over ssh,
 * its pinned check passes, a wrong pin is refused, and a forced update keeps the pair. The migration from the one global service is played in the
 * order a `pulumi up` runs it (creates, then deletes what the program dropped).
 */
import { spawnSync } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import tls from 'tls';
import { buildBundle } from '../../agent/bundle/build';
import { ConfigError, resolveFleetConfig, type FleetConfig } from '../../core/stack-config';
import { managerDocker, resolveSwarmNodes, swarmNodes, swarmPlatform, type DockerRunner } from '../../infra/swarm-docker';
import { stageSwarmContext } from '../../infra/swarm-context';
import { parseSwarmManager, swarmImageName, swarmServiceSpec, tlsVolumeName, TLS_DIR, TOKEN_SECRET_FILE, type SwarmServiceSpec } from '../../infra/swarm-spec';
import { AgentClient } from '../../master/agent-client';
import { runningTaskCertificate } from '../../master/deploy/swarm/agent-fingerprint';
import { httpRequest, probeInstalled } from '../support/agent-process';
import { awaitSwarmConvergence, forceServiceUpdate, SwarmConvergenceError } from '../../master/deploy/swarm/convergence';
import { settleSwarm } from '../../master/deploy/pulumi/swarm-settle';
import { describeTier } from '../support/tier';
import { docker, dockerQuiet, ensureSwarm, globalServiceSpec, serviceCreateArgs, serviceUpdateArgs } from './support/swarm-cli';
import { BASE_IMAGE, freePort, randomToken, systemTier, tempDir, upTestHosts, type TestHosts } from './support/hosts';

const id = crypto.randomBytes(3).toString('hex');
const REPO = `sw-agent-${id}`;
/** Two slaves on the one node: their services are d8-agent-<slave>, as the program names them. */
const SLAVES = [`swa-${id}`, `swb-${id}`] as const;
/** Stands for the one global `d8-agent` service of a stack deployed before per-slave services. */
const LEGACY = `sw-legacy-${id}`;
const commitA = crypto.randomBytes(20).toString('hex');
const commitB = crypto.randomBytes(20).toString('hex');
const versionInfo = (commit: string) => ({ branch: 'main', commit, version: '0.1.0', deployed_at: new Date().toISOString(), dirty: false });

jest.setTimeout(600_000);

describeTier(systemTier, 'swarm mode on a real single-node swarm', () => {
  let root: string;
  let th: TestHosts;
  let config: FleetConfig;
  let manager: DockerRunner;
  const ports: number[] = [];
  const tokens: string[] = [];
  const secrets: string[] = [];
  const images: string[] = [];
  let nodeId: string;
  let good: SwarmServiceSpec[];
  let bad: SwarmServiceSpec[];

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

  const execute = (port: number, token: string) => httpRequest({
    host: '127.0.0.1', port, method: 'POST', path: '/api/execute', scheme: 'https',
    headers: { authorization: `Bearer ${token}` }, body: { command: 'echo swarm-ok', kind: 'shell' },
  });

  beforeAll(async () => {
    root = tempDir('d8-swarm-');
    ensureSwarm();
    th = upTestHosts();
    ports.push(await freePort());
    let second = await freePort();
    while (second === ports[0]) second = await freePort();
    ports.push(second);
    const h = th.hosts.docker;
    const knownHosts = path.join(root, 'known_hosts');
    fs.writeFileSync(knownHosts, `${h.port === 22 ? h.host : `[${h.host}]:${h.port}`} ${h.hostKey}\n`);
    // No fleet token: each slave has its own.
    config = resolveFleetConfig({
      swarm: `ssh://${h.user}@${h.host}:${h.port}`,
      sshKeyPath: th.key,
      slaves: SLAVES.map((name, i) => ({ name, host: '127.0.0.1', user: 'root', agentPort: ports[i] })),
    }, { stack: 'swarmtest', env: {} });
    manager = managerDocker(parseSwarmManager(config.swarm!), { sshKeyPath: th.key, sshOptions: ['-o', `UserKnownHostsFile=${knownHosts}`] });

    // The program's placement, from the real node list read over ssh.
    const placed = resolveSwarmNodes(config.slaves, await swarmNodes(manager));
    nodeId = placed[SLAVES[0]];
    expect(placed[SLAVES[1]]).toBe(nodeId);
    for (const name of SLAVES) {
      const token = randomToken();
      tokens.push(token);
      const secret = `sw-token-${name}`;
      docker(['secret', 'create', secret, '-'], token);
      secrets.push(secret);
    }
    const a = await releaseImage(commitA, false);
    const b = await releaseImage(commitB, true);
    const specs = (r: { image: string; hash: string }, commit: string) => SLAVES.map((slave, i) => swarmServiceSpec({
      slave, node: placed[slave], image: r.image, secret: { id: secrets[i], name: secrets[i] }, agentPort: ports[i], commit, bundleHash: r.hash,
    }));
    good = specs(a, commitA);
    bad = specs(b, commitB);
  });

  afterAll(() => {
    const names = [...(good?.map((g) => g.name) ?? []), LEGACY];
    if (names.length) dockerQuiet(['service', 'rm', ...names]);
    // The services' containers go asynchronously; the secrets and images follow them.
    for (const name of names) {
      for (let i = 0; i < 30 && docker(['ps', '-aq', '--filter', `label=com.docker.swarm.service.name=${name}`]).trim(); i++) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
      }
    }
    for (const secret of secrets) dockerQuiet(['secret', 'rm', secret]);
    dockerQuiet(['volume', 'rm', ...SLAVES.map(tlsVolumeName)]);
    for (const img of images) dockerQuiet(['image', 'rm', img]);
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('reads the nodes over ssh: their platform, and each slave\'s node (a host on no node is refused naming the fix)', async () => {
    const nodes = await swarmNodes(manager);
    expect(nodes.length).toBeGreaterThanOrEqual(1);
    const expected = { x64: 'linux/amd64', arm64: 'linux/arm64', arm: 'linux/arm/v7' }[os.arch() as 'x64' | 'arm64' | 'arm'];
    expect(swarmPlatform(nodes)).toBe(expected);
    // ensureSwarm advertises 127.0.0.1: the slaves' host is the node's address.
    expect(nodes.find((n) => n.id === nodeId)?.addr).toBe('127.0.0.1');
    const elsewhere = { ...config.slaves[0], host: '192.0.2.7', agentHost: '192.0.2.7' };
    expect(() => resolveSwarmNodes([elsewhere], nodes)).toThrow(ConfigError);
    expect(() => resolveSwarmNodes([elsewhere], nodes)).toThrow(/no swarm node has the hostname or address "192\.0\.2\.7" .*set d8:slaves\[0\]\.swarmNode/);
    expect(resolveSwarmNodes([{ ...elsewhere, swarmNode: nodes[0].hostname }], nodes)).toEqual({ [SLAVES[0]]: nodes[0].id });
  });

  it('a good release converges on every slave\'s service, each pinned to its node with its own token: A\'s token is refused by B', async () => {
    for (const spec of good) docker(serviceCreateArgs(spec));
    const progress: string[] = [];
    const report = await awaitSwarmConvergence({ docker: manager, commit: commitA, slaves: config.slaves, pollMs: 1000, onProgress: (w) => progress.push(w) });
    expect(report.why).toBe(`2 slave service(s) run ${commitA.slice(0, 7)}; every agent reports it`);
    for (const [i, spec] of good.entries()) {
      // Independently of the check: each agent answers on its port with the release's commit.
      const h = await probeInstalled('127.0.0.1', ports[i]);
      expect(h.ok && h.health.commit).toBe(commitA);
      expect(h.ok && h.health.install_strategy).toBe('docker');
      const inspect = JSON.parse(docker(['service', 'inspect', spec.name, '--format', '{{json .Spec.TaskTemplate}}'])) as {
        Placement: { Constraints: string[] }; ContainerSpec: { Env: string[]; Secrets: Array<{ SecretName: string }> };
        LogDriver: { Name: string; Options: Record<string, string> };
      };
      expect(inspect.Placement.Constraints).toEqual([`node.id==${nodeId}`]);
      // The task's logs are capped (2 x 5 MB), on the service and on the container the swarm runs.
      expect(inspect.LogDriver).toEqual({ Name: 'json-file', Options: { 'max-size': '5m', 'max-file': '2' } });
      const container = docker(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${spec.name}`]).trim().split('\n')[0];
      expect(JSON.parse(docker(['inspect', container, '--format', '{{json .HostConfig.LogConfig}}']))).toEqual({ Type: 'json-file', Config: { 'max-size': '5m', 'max-file': '2' } });
      expect(inspect.ContainerSpec.Secrets.map((x) => x.SecretName)).toEqual([secrets[i]]);
      // The token reached the task only as a secret file.
      expect(JSON.stringify(inspect.ContainerSpec.Env)).not.toContain(tokens[i]);
    }
    const [pa, pb] = ports;
    const [ta, tb] = tokens;
    const own = await execute(pa, ta);
    expect(own.status).toBe(200);
    expect(JSON.stringify(own.body)).toContain('swarm-ok');
    expect((await execute(pb, ta)).status).toBe(401);
    expect((await execute(pa, tb)).status).toBe(401);
    expect((await execute(pb, tb)).status).toBe(200);
  });

  it('each slave\'s agent serves HTTPS with a key pair on its node\'s volume; the master reads its fingerprint from the manager over ssh and pins it; the pair survives a task restart', async () => {
    const [sa] = good.map((g) => g.name);
    /** The certificate the agent's port presents, seen independently of the master's reader. */
    const presented = (port: number): Promise<string> => new Promise((resolve, reject) => {
      const sock = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        const fp = sock.getPeerCertificate().fingerprint256;
        sock.destroy();
        resolve(fp);
      });
      sock.once('error', reject);
    });
    const report = await awaitSwarmConvergence({ docker: manager, commit: commitA, slaves: config.slaves, pollMs: 1000 });
    const read: string[] = [];
    for (const [i, spec] of good.entries()) {
      const cert = await runningTaskCertificate(manager, spec.name);
      expect(cert.scheme).toBe('https');
      const fp = (cert as { fingerprint: string }).fingerprint;
      read.push(fp);
      expect(fp).toBe(await presented(ports[i]));
      // The convergence check spoke to the agent with that pin and reports it for the store.
      expect(report.fingerprints[SLAVES[i]]).toBe(fp);
      const inspect = JSON.parse(docker(['service', 'inspect', spec.name, '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Mounts}}'])) as Array<{ Source: string; Target: string; Type: string }>;
      expect(inspect).toEqual([expect.objectContaining({ Type: 'volume', Source: tlsVolumeName(SLAVES[i]), Target: TLS_DIR })]);
    }
    // Two slaves on one node, two volumes: two key pairs.
    expect(read[0]).not.toBe(read[1]);
    const client = new AgentClient({ deadlineMs: 10_000 });
    try {
      const ok = await client.health({ name: SLAVES[0], agentHost: '127.0.0.1', agentPort: ports[0], tlsFingerprint: read[0] });
      expect(ok.ok && ok.health.commit).toBe(commitA);
      // Slave B's certificate pinned for A's address: refused before anything is sent.
      const wrong = await client.health({ name: SLAVES[0], agentHost: '127.0.0.1', agentPort: ports[0], tlsFingerprint: read[1] });
      expect(wrong.ok).toBe(false);
      expect(!wrong.ok && wrong.pinMismatch).toEqual({ address: `127.0.0.1:${ports[0]}`, expected: read[1], presented: read[0] });
      // Plain HTTP is not served any more.
      expect((await client.health({ name: SLAVES[0], agentHost: '127.0.0.1', agentPort: ports[0], tlsFingerprint: null })).ok).toBe(false);
    } finally {
      client.close();
    }

    // A task restart (forced update): a new task, the same key pair from the node's volume.
    const taskBefore = docker(['service', 'ps', sa, '-q', '--no-trunc', '--filter', 'desired-state=running']).trim();
    await forceServiceUpdate(manager, sa);
    const again = await awaitSwarmConvergence({ docker: manager, commit: commitA, slaves: config.slaves, pollMs: 1000 });
    const taskAfter = docker(['service', 'ps', sa, '-q', '--no-trunc', '--filter', 'desired-state=running']).trim();
    expect(taskAfter).not.toBe(taskBefore);
    expect(again.fingerprints[SLAVES[0]]).toBe(read[0]);
    expect(await runningTaskCertificate(manager, sa)).toEqual({ scheme: 'https', fingerprint: read[0] });
    expect(await presented(ports[0])).toBe(read[0]);
  });

  it('a release whose agent exits is rolled back by the swarm, and the check fails naming the slave\'s service', async () => {
    for (const [i, spec] of bad.entries()) docker(serviceUpdateArgs(good[i], spec));
    const err = await awaitSwarmConvergence({ docker: manager, commit: commitB, slaves: config.slaves, pollMs: 1000 })
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(SwarmConvergenceError);
    const e = err as SwarmConvergenceError;
    expect(e.reason).toBe('rolled_back');
    expect(e.kind).toBe('install_failed');
    expect(e.message).toMatch(new RegExp(`rolled service d8-agent-sw[ab]-${id} back \\(rollback_(started|paused|completed)`));
    expect(e.message).toContain(`release ${commitB.slice(0, 7)} is not running`);
    expect(e.message).toContain('non-zero exit (3)');
    // The rollback brings the previous release back on both, and the check says so.
    const back = await awaitSwarmConvergence({ docker: manager, commit: commitA, slaves: config.slaves, pollMs: 1000 });
    expect(back.why).toContain(commitA.slice(0, 7));
    for (const port of ports) {
      const deadline = Date.now() + 120_000;
      let h = await probeInstalled('127.0.0.1', port);
      while (!(h.ok && h.health.commit === commitA) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 1000));
        h = await probeInstalled('127.0.0.1', port);
      }
      expect(h.ok && h.health.commit).toBe(commitA);
    }
  });

  it('a forced deploy leaves a converged fleet alone, and restarts only the service of the agent that does not answer', async () => {
    const running = (service: string): string => docker(['service', 'ps', service, '-q', '--filter', 'desired-state=running']).trim();
    const [sa, sb] = good.map((g) => g.name);
    const first = [running(sa), running(sb)];
    const calm = await settleSwarm(config, { commit: { value: commitA } }, { force: true, changed: false }, { docker: manager, pollMs: 1000 });
    expect(calm).toMatchObject({ forced: false, restarted: [] });
    expect([running(sa), running(sb)]).toEqual(first);

    // A hung agent (its container frozen): the slave is dead to the master, its task still "running" to the swarm.
    const container = docker(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${sa}`]).trim();
    docker(['pause', container]);
    expect((await probeInstalled('127.0.0.1', ports[0], 2000)).ok).toBe(false);
    const settled = await settleSwarm(config, { commit: { value: commitA } }, { force: true, changed: false }, { docker: manager, pollMs: 1000 });
    expect(settled).toMatchObject({ forced: true, restarted: [SLAVES[0]] });
    expect(running(sa)).not.toBe(first[0]);
    expect(running(sb)).toBe(first[1]);
    const h = await probeInstalled('127.0.0.1', ports[0]);
    expect(h.ok && h.health.commit).toBe(commitA);
  });

  it('a new token for one slave (its rotation: a new secret) restarts only that slave\'s task; its old token is refused after', async () => {
    const [sa, sb] = good.map((g) => g.name);
    const running = (service: string): string => docker(['service', 'ps', service, '-q', '--filter', 'desired-state=running']).trim();
    const before = [running(sa), running(sb)];
    const next = randomToken();
    const secret = `sw-token-${SLAVES[0]}-2`;
    docker(['secret', 'create', secret, '-'], next);
    secrets.push(secret);
    // What the provider does with the new secret's id: the service's secret list changes, one task restarts (stop-first).
    docker(['service', 'update', '--detach', '--secret-rm', secrets[0], '--secret-add', `source=${secret},target=${TOKEN_SECRET_FILE}`, sa]);
    let down = 0;
    let last = Date.now();
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const h = await probeInstalled('127.0.0.1', ports[0], 1000);
      const now = Date.now();
      if (!h.ok) down += now - last;
      last = now;
      // The old task may still answer the probe and be gone a moment later: a refused execute is still the restart.
      if (running(sa) !== before[0] && h.ok && (await execute(ports[0], next).catch(() => null))?.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await execute(ports[0], next)).status).toBe(200);
    expect((await execute(ports[0], tokens[0])).status).toBe(401);
    expect(running(sb)).toBe(before[1]);
    expect((await execute(ports[1], tokens[1])).status).toBe(200);
    // The restart gap (the old task stops before the new one binds the port), for the record.
    process.stderr.write(`swarm token rotation: agent unreachable for about ${(down / 1000).toFixed(1)} s\n`);
    expect(down).toBeLessThan(60_000);
    await awaitSwarmConvergence({ docker: manager, commit: commitA, slaves: config.slaves, pollMs: 1000 });
  });

  it('from the one global service: the new service\'s task fails on the held port until the old service is deleted, then converges', async () => {
    const [sa] = good.map((g) => g.name);
    const gone = (name: string) => !docker(['ps', '-aq', '--filter', `label=com.docker.swarm.service.name=${name}`]).trim();
    docker(['service', 'rm', sa]);
    for (let i = 0; i < 60 && !gone(sa); i++) await new Promise((r) => setTimeout(r, 1000));
    // Before the change: one global service (here on A's port) holding one token.
    docker(serviceCreateArgs(globalServiceSpec(good[0], LEGACY)));
    let h = await probeInstalled('127.0.0.1', ports[0]);
    for (let i = 0; i < 60 && !(h.ok && h.health.commit === commitA); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      h = await probeInstalled('127.0.0.1', ports[0]);
    }
    expect(h.ok).toBe(true);

    // pulumi up, first half: the per-slave service is created while the old task holds the port.
    docker(serviceCreateArgs(good[0]));
    const failedTasks = () => docker(['service', 'ps', sa, '--no-trunc', '--format', '{{.Error}}']).split('\n').filter((l) => l.includes('non-zero exit'));
    for (let i = 0; i < 60 && failedTasks().length === 0; i++) await new Promise((r) => setTimeout(r, 1000));
    expect(failedTasks().length).toBeGreaterThan(0);
    expect(serviceLogs(sa)).toContain('EADDRINUSE');
    // The old agent still answers meanwhile.
    expect((await probeInstalled('127.0.0.1', ports[0])).ok).toBe(true);

    // Second half: the old service is deleted (the provider waits for its containers); the restart policy brings A's agent up.
    const removed = Date.now();
    docker(['service', 'rm', LEGACY]);
    for (let i = 0; i < 60 && !gone(LEGACY); i++) await new Promise((r) => setTimeout(r, 500));
    const report = await awaitSwarmConvergence({ docker: manager, commit: commitA, slaves: config.slaves, pollMs: 1000 });
    expect(report.why).toContain('2 slave service(s)');
    expect(Date.now() - removed).toBeLessThan(60_000);
    expect((await execute(ports[0], tokens[0])).status).toBe(200);
    expect((await execute(ports[0], tokens[1])).status).toBe(401);
  });
});

/** What the service's tasks wrote, stdout and stderr (`docker service logs` passes each on as its own). */
function serviceLogs(service: string): string {
  const r = spawnSync('docker', ['service', 'logs', '--raw', service], { encoding: 'utf8', timeout: 60_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}
