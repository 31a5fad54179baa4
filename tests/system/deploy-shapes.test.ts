/**
 * The four host shapes over real SSH with the real direct deployer, then redeploys over running
 * agents and uninstall. Hosts: scripts/test-hosts.sh (real sshd per host, real docker engine).
 */
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { buildBundle, type BundleInfo } from '../../agent/bundle/build';
import { DirectDeployer, type DeployProgress } from '../../master/deploy/direct';
import { probeInstalled } from '../support/agent-process';
import type { DeployResult } from '../../master/deploy/deployer';
import type { FleetConfig, SlaveConfig } from '../../core/stack-config';
import { describeTier } from '../support/tier';
import {
  agentPids, containersForPort, fleetConfig, freePort, readAll, REPO, SHAPES, systemTier, tempDir, uninstallAsUser,
  upTestHosts, userProcesses, type Shape, type TestHosts,
} from './support/hosts';

jest.setTimeout(10 * 60 * 1000);

describeTier(systemTier, 'direct deployer on the four host shapes', () => {
  let th: TestHosts;
  let bundle: BundleInfo;
  let config: FleetConfig;
  let deployer: DirectDeployer;
  let d8Home: string;
  let outRoot: string;
  const ports = {} as Record<Shape, number>;
  const progress: DeployProgress[] = [];
  const first = {} as Record<Shape, DeployResult>;
  const slave = (s: Shape): SlaveConfig => config.slaves.find((x) => x.name === s)!;

  beforeAll(async () => {
    th = upTestHosts();
    for (const s of SHAPES) ports[s] = await freePort();
    d8Home = tempDir('d8-systest-home-');
    outRoot = tempDir('d8-systest-bundles-');
    bundle = await buildBundle({ outRoot });
    config = fleetConfig(th, SHAPES.map((s) => ({ name: s, host: th.hosts[s], agentPort: ports[s] })));
    deployer = new DirectDeployer({
      config, bundle, env: { ...process.env, D8_HOME: d8Home }, healthTimeoutSeconds: 60,
      onProgress: (p) => progress.push(p),
    });
    // All four at once, as `d8 up` does.
    const results = await Promise.all(SHAPES.map((s) => deployer.deploy(slave(s), { reason: 'systest' })));
    SHAPES.forEach((s, i) => { first[s] = results[i]; });
  });

  afterAll(() => {
    // D8_SYSTEST_KEEP=1 leaves agents, bundles and build logs in place for a post-mortem.
    if (!th || process.env.D8_SYSTEST_KEEP === '1') return;
    for (const s of SHAPES) uninstallAsUser(REPO, th.hosts[s].user);
    for (const d of [d8Home, outRoot]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  it.each(['docker', 'venv', 'native'] as const)('%s host: the expected strategy wins and the agent reports the bundle commit', async (s) => {
    const r = first[s];
    expect(r.error).toBeNull();
    expect(r.ok).toBe(true);
    expect(r.strategy).toBe(th.hosts[s].expect);
    expect(r.commit).toBe(bundle.versionInfo.commit);
    // Every strategy before the winner failed all its attempts, the winner's last attempt succeeded.
    const order = ['docker', 'venv', 'native'];
    const failedBefore = r.attempts.filter((a) => order.indexOf(a.strategy) < order.indexOf(s));
    expect(failedBefore.every((a) => !a.ok)).toBe(true);
    expect(failedBefore).toHaveLength(3 * order.indexOf(s));
    expect(r.attempts[r.attempts.length - 1]).toMatchObject({ strategy: s, ok: true });
    // Checked here again, from outside the deployer.
    const probe = await probeInstalled(th.hosts[s].host, ports[s]);
    expect(probe.ok && probe.health.commit).toBe(bundle.versionInfo.commit);
    expect(probe.ok && probe.health.install_strategy).toBe(s);
  });

  it('native host: venv failed for real (no ensurepip), with Debian\'s own message', () => {
    const venv = first.native.attempts.filter((a) => a.strategy === 'venv');
    expect(venv).toHaveLength(3);
    expect(venv[0].stderr_tail).toMatch(/ensurepip is not\s+available/);
  });

  it('broken host: 3 strategies x 3 attempts fail, a clear error, a build log without secrets', () => {
    const r = first.broken;
    expect(r.ok).toBe(false);
    expect(r.strategy).toBeNull();
    expect(r.attempts.map((a) => `${a.strategy}${a.attempt}`)).toEqual(
      ['docker1', 'docker2', 'docker3', 'venv1', 'venv2', 'venv3', 'native1', 'native2', 'native3']);
    expect(r.attempts.every((a) => !a.ok && a.exit_code !== 0)).toBe(true);
    expect(r.error).toMatch(/every strategy failed/);
    expect(r.buildLogPath).toBeTruthy();
    const log = JSON.parse(fs.readFileSync(r.buildLogPath!, 'utf8'));
    expect(log).toMatchObject({ slave_id: 'broken', slave_host: th.hosts.broken.host, status: 'failed', strategy: null });
    expect(log.error).toMatch(/every strategy failed/);
    for (const c of log.commands) expect(Object.keys(c).sort()).toEqual(['command', 'exit_code', 'stderr', 'stdout', 'success', 'timestamp']);
    expect(log.commands.some((c: { command: string }) => c.command.includes('install.sh'))).toBe(true);
    expect((fs.statSync(r.buildLogPath!).mode & 0o777).toString(8)).toBe('600');
  });

  it('no build log holds the token or the SSH key', () => {
    const logs = readAll(path.join(d8Home, 'build_logs'));
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(config.agentToken!);
    const key = fs.readFileSync(th.key, 'utf8');
    expect(logs).not.toContain(key.split('\n')[1]);
    expect(logs).not.toContain('PRIVATE KEY');
  });

  it('streams installer progress per slave and attempt', () => {
    const msgs = progress.filter((p) => p.slave === 'native' && p.phase === 'install').map((p) => p.message);
    expect(msgs).toEqual(expect.arrayContaining([
      expect.stringMatching(/^docker attempt 1\/3: starting/), expect.stringMatching(/^venv attempt 3\/3: failed/),
      expect.stringMatching(/^native attempt 1\/3: ok/),
    ]));
  });

  it('a deploy of a slave that already runs the commit does nothing unless forced', async () => {
    if (bundle.versionInfo.dirty) {
      // A dirty tree always redeploys (same commit, different code): the check only applies to clean builds.
      const r = await deployer.deploy(slave('venv'), { reason: 'systest' });
      expect(r.ok).toBe(true);
      expect(r.attempts.length).toBeGreaterThan(0);
      return;
    }
    const pidsBefore = agentPids(th.hosts.venv.user, ports.venv);
    const r = await deployer.deploy(slave('venv'), { reason: 'systest' });
    expect(r).toMatchObject({ ok: true, strategy: 'venv', attempts: [] });
    expect(agentPids(th.hosts.venv.user, ports.venv)).toEqual(pidsBefore);
  });

  it('forced redeploy over a running venv agent: one agent, same port, a new process', async () => {
    const before = agentPids(th.hosts.venv.user, ports.venv);
    expect(before).toHaveLength(1);
    const r = await deployer.deploy(slave('venv'), { reason: 'systest', force: true });
    expect(r.error).toBeNull();
    expect(r.strategy).toBe('venv');
    const after = agentPids(th.hosts.venv.user, ports.venv);
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before[0]);
    const probe = await probeInstalled(th.hosts.venv.host, ports.venv);
    expect(probe.ok && probe.health.commit).toBe(bundle.versionInfo.commit);
  });

  it('a new commit replaces the running agents (native and docker): one agent each, same port', async () => {
    const next = await buildBundle({
      outRoot,
      versionInfo: { ...bundle.versionInfo, commit: crypto.randomBytes(20).toString('hex'), deployed_at: new Date().toISOString() },
    });
    expect(next.hash).not.toBe(bundle.hash);
    const d2 = new DirectDeployer({ config, bundle: next, env: { ...process.env, D8_HOME: d8Home }, healthTimeoutSeconds: 60 });
    const [native, docker] = await Promise.all([
      d2.deploy(slave('native'), { reason: 'behind' }),
      d2.deploy(slave('docker'), { reason: 'behind' }),
    ]);
    expect(native.error).toBeNull();
    expect(docker.error).toBeNull();
    expect(native).toMatchObject({ ok: true, strategy: 'native', commit: next.versionInfo.commit });
    expect(docker).toMatchObject({ ok: true, strategy: 'docker', commit: next.versionInfo.commit });
    expect(agentPids(th.hosts.native.user, ports.native)).toHaveLength(1);
    expect(containersForPort(ports.docker)).toEqual([`d8-agent-${ports.docker}`]);
    for (const s of ['native', 'docker'] as const) {
      const probe = await probeInstalled(th.hosts[s].host, ports[s]);
      expect(probe.ok && probe.health.commit).toBe(next.versionInfo.commit);
    }
  });

  it('uninstall leaves nothing: no process, no container, no unit, no ~/.d8-agent', async () => {
    for (const s of ['docker', 'venv', 'native'] as const) {
      const r = await deployer.uninstall(slave(s));
      expect(r.error).toBeNull();
      expect(r.ok).toBe(true);
      const h = th.hosts[s];
      // What is left, by name, so that a failure says what uninstall missed.
      const left = fs.existsSync(path.join(h.home, '.d8-agent')) ? fs.readdirSync(path.join(h.home, '.d8-agent'), { recursive: true }) : null;
      expect({ shape: s, left }).toEqual({ shape: s, left: null });
      expect(fs.existsSync(path.join(h.home, '.config', 'systemd', 'user', `d8-agent-${ports[s]}.service`))).toBe(false);
      expect(agentPids(h.user, ports[s])).toEqual([]);
      const probe = await probeInstalled(h.host, ports[s], 1000);
      expect(probe.ok).toBe(false);
    }
    expect(containersForPort(ports.docker)).toEqual([]);
    // Nothing the install started keeps running under these users (SSH sessions included).
    for (const s of ['venv', 'native'] as const) {
      expect(userProcesses(th.hosts[s].user).filter((l) => l.includes(`agent-${ports[s]}`) || l.includes('install.sh'))).toEqual([]);
    }
  });
});
