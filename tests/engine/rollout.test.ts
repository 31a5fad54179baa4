/**
 * Safe rollouts (issue 14) through the PULUMI deployer on the real engine: a test repository with the
 * agent's sources (the master builds each release from its own checkout), four slaves on the SSH test
 * hosts (venv, venv2, venv3: venv; native: native), `d8 master --engine pulumi`.
 *  - `d8 up --engine pulumi` deploys the first release and keeps it (D8_HOME/releases).
 *  - A genuinely bad release (its agent exits at start-up): the canary's targeted up fails, a
 *    targeted up with the kept previous bundle rolls it back and it is healthy again; the other three
 *    never ran it; one rollout_halted alert, one request. The stack's state matches what runs: a
 *    plain preview with the previous release changes nothing, one with the bad release replaces each
 *    slave's bundle copy and install and nothing else.
 *  - Per-slave policy: `place: canary` picks the canary, `place: last` puts a slave in the last batch.
 *    A release that breaks only that last slave: the others pass, it is rolled back, and a plain
 *    preview on the master's commit shows only that slave's bundle and install to be replaced.
 * Needs: scripts/pulumi-toolchain.sh build, the system tier's hosts (root), `npm run build`.
 */
import { spawn, type ChildProcess } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { LocalWorkspace, PulumiCommand, type Stack } from '@pulumi/pulumi/automation';
import { repoRoot } from '../../core/paths';
import type { DeployResult } from '../../core/deploy-result';
import { openStore, type Store } from '../../master/store';
import { probeInstalled } from '../support/agent-process';
import { slaveUrns } from '../../infra/urns';
import { describeTier } from '../support/tier';
import { BASE_IMAGE, freePort, randomToken, upTestHosts, type TestHost, type TestHosts } from '../system/support/hosts';
import { createFleetProject, engineEnv, engineHostsTier, git, runD8, uninstallPort, waitFor, writeStackFile, type FleetProject } from './support/fleet-project';
import { commandProviderLabel, localBackendEnv, pulumiToolchain } from './support/toolchain';

jest.setTimeout(20 * 60_000);

const STACK = 'roll';
const D8_BIN = path.join(repoRoot(), 'bin', 'd8.js');
const HEALTHY_FOR = 3;

interface Box { name: string; host: TestHost; port: number; strategy: 'venv' | 'native'; rollout?: Record<string, unknown> }

const quiet = { onOutput: () => undefined, color: 'never' as const };

describeTier(engineHostsTier, `rollouts through the pulumi deployer on the real engine (${commandProviderLabel()})`, () => {
  let work: string;
  let backendDir: string;
  let project: FleetProject;
  let th: TestHosts;
  let boxes: Box[];
  let stack: Stack;
  let env: Record<string, string>;
  let home: string;
  let master: ChildProcess | undefined;
  let masterLog: string;
  let store: Store | undefined;
  let good: string;
  let bad: string;
  const token = randomToken();
  const mainTs = () => path.join(project.dir, 'agent', 'main.ts');
  let goodMain: string;

  const db = (): Store => (store ??= openStore(path.join(home, 'master.db')));
  const names = () => boxes.map((b) => b.name);
  const rec = (name: string) => db().slaves.get(STACK, name);
  const allHealthyAt = (commit: string) => boxes.every((b) => { const s = rec(b.name); return s?.state === 'healthy' && s.commit === commit; });
  const commitAll = (msg: string): string => { git(project.dir, 'add', '-A'); git(project.dir, 'commit', '-q', '-m', msg); return git(project.dir, 'rev-parse', 'HEAD'); };
  const alerts = (): Array<{ kind: string; data: Record<string, unknown> }> => {
    const s = db();
    return s.db.transaction(() => [
      ...s.outbox.sent(10_000),
      ...(s.db.prepare('SELECT payload FROM alerts_outbox ORDER BY id').all() as Array<{ payload: string }>).map((r) => JSON.parse(r.payload)),
    ])();
  };
  /** The commit each slave's install resource was last deployed with, from the stack's state. */
  const stateCommits = async (): Promise<Record<string, string>> => {
    const d = (await stack.exportStack()).deployment as { resources: Array<{ urn: string; inputs?: { triggers?: unknown[] } }> };
    return Object.fromEntries(boxes.map((b) => [b.name, String(d.resources.find((r) => r.urn === slaveUrns(STACK, b.name, { local: false }).install)?.inputs?.triggers?.[0])]));
  };
  /** A plain preview (no target) with `bundleDir` as the fleet's release: its change counts. */
  const preview = async (bundleDir: string): Promise<Record<string, number>> => {
    stack.workspace.envVars.D8_BUNDLE_DIR = bundleDir;
    const r = await stack.preview(quiet);
    return r.changeSummary as Record<string, number>;
  };

  const d8 = (args: string[]) => runD8(args, { cwd: project.dir, env });

  function startMaster(): void {
    const out = fs.openSync(masterLog, 'a');
    master = spawn(process.execPath, [D8_BIN, 'master', '--stack', STACK, '--repo', project.dir, '--engine', 'pulumi', '--interval', '2'], {
      cwd: project.dir,
      env: { ...env, D8_MASTER_TUNING: JSON.stringify({ settleMs: 60_000, updateBackoffMs: 2000, controlPollMs: 200, attemptTimeoutMs: 2000, checkDeadlineMs: 5000, stopGraceMs: 120_000, deadAfter: 2 }) },
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
  }
  async function stopMaster(): Promise<void> {
    const m = master;
    if (!m || m.exitCode !== null || m.signalCode !== null) return;
    const done = new Promise((r) => m.once('exit', r));
    m.kill('SIGTERM');
    const t = setTimeout(() => m.kill('SIGKILL'), 150_000);
    await done;
    clearTimeout(t);
  }
  const log = () => fs.readFileSync(masterLog, 'utf8');
  const alive = (): null => {
    if (master && master.exitCode !== null) throw new Error(`the master exited (${master.exitCode}):\n${log().slice(-4000)}`);
    return null;
  };

  beforeAll(async () => {
    th = upTestHosts();
    const toolchain = pulumiToolchain();
    const backend = localBackendEnv('d8-engine-roll-backend-');
    backendDir = backend.dir;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-engine-roll-'));
    project = createFleetProject(path.join(work, 'project'), { agentSources: true });
    good = project.head;
    goodMain = fs.readFileSync(mainTs(), 'utf8');
    boxes = [
      { name: 'v1', host: th.hosts.venv, port: await freePort(), strategy: 'venv' },
      { name: 'v2', host: th.hosts.venv2, port: await freePort(), strategy: 'venv' },
      { name: 'v3', host: th.hosts.venv3, port: await freePort(), strategy: 'venv', rollout: { place: 'canary' } },
      { name: 'nat', host: th.hosts.native, port: await freePort(), strategy: 'native', rollout: { place: 'last', healthyForSeconds: HEALTHY_FOR + 1 } },
    ];
    writeStackFile(project.dir, STACK, {
      sshKeyPath: th.key, installAttempts: 1, installDelaySeconds: 1, baseImage: BASE_IMAGE, autoUpdate: 'auto',
      dashboard: { enabled: false }, dailySummary: { enabled: false },
      rollout: { canary: 1, batchSize: 2, healthyForSeconds: HEALTHY_FOR, maxFailures: 1 },
      slaves: boxes.map((b) => ({
        name: b.name, host: b.host.host, user: b.host.user, sshPort: b.host.port, agentPort: b.port, strategies: [b.strategy], hostKey: b.host.hostKey,
        ...(b.rollout ? { rollout: b.rollout } : {}),
      })),
    });
    env = engineEnv(toolchain.env, backend.env);
    fs.mkdirSync(path.join(work, 'tmp'));
    home = path.join(work, 'd8-home');
    masterLog = path.join(work, 'master.log');
    Object.assign(env, { D8_HOME: home, D8_AGENT_TOKEN: token, D8_LOG_LEVEL: 'info', TMPDIR: path.join(work, 'tmp') });
    // The master builds every release from the test repository's checkout.
    for (const k of ['D8_BUNDLE_DIR', 'D8_SLAVE_BUNDLES', 'D8_SSH_PRIVATE_KEY', 'D8_SSH_KEY_PATH', 'TELEGRAM_TOKEN']) delete env[k];
    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(toolchain.binDir) });
    stack = await LocalWorkspace.createOrSelectStack({ stackName: STACK, workDir: project.dir }, { pulumiCommand, envVars: env });
  });

  afterAll(async () => {
    if (master && master.exitCode === null && master.signalCode === null) master.kill('SIGKILL');
    store?.close();
    if (stack) {
      delete stack.workspace.envVars.D8_BUNDLE_DIR;
      await stack.destroy(quiet).catch(() => undefined);
      await stack.workspace.removeStack(STACK, { force: true }).catch(() => undefined);
    }
    for (const b of boxes ?? []) uninstallPort(b.host.user, b.port);
    if (work) fs.rmSync(work, { recursive: true, force: true });
    if (backendDir) fs.rmSync(backendDir, { recursive: true, force: true });
  });

  it('`d8 up --engine pulumi` deploys the first release from the checkout and keeps it as a release', async () => {
    const r = await d8(['up', '--stack', STACK, '--dir', project.dir, '--engine', 'pulumi', '--json']);
    let results: DeployResult[];
    try {
      results = JSON.parse(r.stdout) as DeployResult[];
    } catch {
      throw new Error(`d8 up exited ${r.code} without a JSON result:\n${r.stderr.slice(-4000)}`);
    }
    expect(results.map((x) => [x.slave, x.ok, x.strategy, x.commit, x.error])).toEqual(boxes.map((b) => [b.name, true, b.strategy, good, null]));
    const kept = db().releases.get(STACK, good);
    expect(kept?.dir.startsWith(path.join(home, 'releases'))).toBe(true);
    expect(db().releases.slaves(STACK).map((s) => [s.slave, s.running_commit]).sort()).toEqual(names().map((n) => [n, good]).sort());
    expect(await stateCommits()).toEqual(Object.fromEntries(names().map((n) => [n, good])));
  });

  it('a bad release: the canary fails, a targeted up with the kept previous bundle rolls it back; the others never run it', async () => {
    startMaster();
    await waitFor('all four healthy at the first release, recorded as good', () => alive() ??
      (allHealthyAt(good) && names().every((n) => db().releases.slave(STACK, n)?.good_commit === good) ? true : null), 120_000);
    const historyBefore = (await stack.history()).length;

    // A genuinely bad release: its agent exits at start-up.
    fs.writeFileSync(mainTs(), `console.error('this release is broken'); process.exit(3);\n${goodMain}`);
    bad = commitAll('bad release');
    await waitFor('the bad rollout to halt', () => alive() ?? (db().rollouts.forCommit(STACK, bad)?.status === 'halted' ? true : null), 10 * 60_000);
    const halted = db().rollouts.forCommit(STACK, bad)!;
    // v3 is the canary (place: canary), nat is in the last batch (place: last), with its own gate.
    expect(halted.members.map((m) => [m.slave, m.stage, m.status, m.healthy_for_seconds]))
      .toEqual([['v3', 0, 'rolled_back', null], ['v1', 1, 'pending', null], ['v2', 1, 'pending', null], ['nat', 2, 'pending', HEALTHY_FOR + 1]]);
    expect(halted.members[0].error).toMatch(/the deploy failed/);
    await waitFor('v3 answering at the previous release', () => alive() ?? (rec('v3')?.state === 'version_mismatch' && rec('v3')?.commit === good ? true : null), 60_000);
    const h = await probeInstalled(boxes[2].host.host, boxes[2].port, 5000);
    expect(h.ok && h.health.commit).toBe(good);

    // Two updates of the stack, both targeted at the canary: the failed one and the rollback.
    const updates = (await stack.history()).slice(0, (await stack.history()).length - historyBefore).reverse();
    expect(updates.map((u) => [u.result, u.message?.replace(/^d8: /, '')])).toEqual([
      ['failed', `rollout ${bad.slice(0, 7)} v3`], ['succeeded', `rollback from ${bad.slice(0, 7)} v3`],
    ]);
    // The rollback installed the kept release from D8_HOME, not the checkout's bundle.
    const kept = db().releases.get(STACK, good)!;
    expect(log()).toContain(`v3 gets the release ${good.slice(0, 7)}`);
    expect(log()).toContain(JSON.stringify(kept.dir));
    const deploys = db().deploys.list(STACK, undefined, 500);
    expect(deploys.filter((d) => d.reason !== 'manual').map((d) => [d.slave, d.reason, d.status, d.commit]))
      .toEqual([['v3', `rollback from ${bad.slice(0, 7)}`, 'ok', good], ['v3', `rollout ${bad.slice(0, 7)}`, 'failed', null]]);
    for (const n of ['v1', 'v2', 'nat']) {
      const seen = db().db.prepare('SELECT COUNT(*) AS n FROM check_history WHERE slave = ? AND commit_sha = ?').get(n, bad) as { n: number };
      expect(seen.n).toBe(0);
      expect(rec(n)).toMatchObject({ state: 'version_mismatch', drift: 'behind', commit: good });
    }
    await new Promise((r) => setTimeout(r, 4000)); // later sweeps neither alert nor ask again
    const haltAlerts = alerts().filter((a) => a.kind === 'rollout_halted');
    expect(haltAlerts).toHaveLength(1);
    expect(haltAlerts[0].data).toMatchObject({ commit: bad, stage: 0, untouched: ['v1', 'v2', 'nat'], request_id: halted.request_id, failed: [{ slave: 'v3', rolled_back_to: good, rollback_ok: true }] });
    expect(db().requests.list({}).map((r) => r.title)).toEqual([`retry the rollout of ${bad.slice(0, 7)}?`]);
    expect(log()).not.toContain(token);
  });

  it('the stack\'s state is what runs: a plain preview at the previous release changes nothing, at the bad one only each slave\'s bundle and install', async () => {
    await stopMaster();
    expect(await stateCommits()).toEqual(Object.fromEntries(names().map((n) => [n, good])));
    // 1 stack + 4 × (component, state, bundle copy, install).
    expect(await preview(db().releases.get(STACK, good)!.dir)).toEqual({ same: 17 });
    expect(await preview(db().releases.get(STACK, bad)!.dir)).toEqual({ same: 9, replace: 8 });
  });

  it('per-slave policy: a release that breaks only the `last` slave passes the canary and batch, that slave is rolled back; a plain preview on the master\'s commit shows only its change', async () => {
    fs.writeFileSync(mainTs(), `if (require('os').userInfo().username === ${JSON.stringify(boxes[3].host.user)}) process.exit(5);\n${goodMain}`);
    const third = commitAll('a release broken on the native host only');
    startMaster();
    await waitFor('the third rollout to halt', () => alive() ?? (db().rollouts.forCommit(STACK, third)?.status === 'halted' ? true : null), 12 * 60_000);
    const r = db().rollouts.forCommit(STACK, third)!;
    expect(r.members.map((m) => [m.slave, m.stage, m.status])).toEqual([['v3', 0, 'passed'], ['v1', 1, 'passed'], ['v2', 1, 'passed'], ['nat', 2, 'rolled_back']]);
    expect(db().rollouts.forCommit(STACK, bad)?.status).toBe('aborted');
    await waitFor('nat back at the first release', () => alive() ?? (rec('nat')?.commit === good && rec('nat')?.state === 'version_mismatch' ? true : null), 60_000);
    await waitFor('the others healthy at the third release', () => alive() ?? (['v1', 'v2', 'v3'].every((n) => rec(n)?.state === 'healthy' && rec(n)?.commit === third) ? true : null), 60_000);
    await stopMaster();
    expect(await stateCommits()).toEqual({ v1: third, v2: third, v3: third, nat: good });
    expect(await preview(db().releases.get(STACK, third)!.dir)).toEqual({ same: 15, replace: 2 });
    expect(alerts().filter((a) => a.kind === 'rollout_halted')).toHaveLength(2);
  });
});
