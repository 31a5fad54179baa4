/**
 * The master daemon end to end: a real `d8 master` child process supervising real agents on
 * loopback, with a test double of the Deployer (master-support/spawn-deployer.js) that restarts the
 * real agent instead of running install.sh. One daemon runs through the scenarios in order.
 */
import { spawn } from 'child_process';
import path from 'path';
import { Fleet, freePort, waitFor, sleep, REPO_ROOT } from './master-support/fleet';
import type { AgentHandle } from '../support/agent-process';

jest.setTimeout(240_000);

describe('d8 master daemon (real processes)', () => {
  const fleet = new Fleet();
  const agents: Record<string, AgentHandle> = {};
  let daemon: ReturnType<Fleet['daemon']>;
  const tuning = { breakerFailures: 3, breakerOpenMs: 4000 };
  const env = { D8_TEST_DEPLOY_FAIL: 'broken' };

  beforeAll(async () => {
    const specs = [
      { name: 'steady', port: await freePort() },
      { name: 'victim', port: await freePort() },
      { name: 'old', port: await freePort() },
      { name: 'gated', port: await freePort(), autoUpdate: 'approve' as const },
      { name: 'broken', port: await freePort() },
    ];
    const c = fleet.initRepo(specs);
    const port = (n: string) => specs.find((s) => s.name === n)!.port;
    agents.steady = await fleet.agent('steady', port('steady'), c.main);
    agents.victim = await fleet.agent('victim', port('victim'), c.main);
    agents.old = await fleet.agent('old', port('old'), c.base);
    agents.gated = await fleet.agent('gated', port('gated'), c.base);
    daemon = fleet.daemon({ tuning, env });
  });
  afterAll(() => fleet.cleanup());

  const state = (n: string) => fleet.slave(n)?.state;

  it('sees the healthy slave and redeploys the behind one until it reports the master commit', async () => {
    await waitFor(() => state('steady') === 'healthy', 60_000, 'steady healthy');
    await waitFor(() => fleet.slave('old')?.commit === fleet.commits.main && state('old') === 'healthy', 90_000, 'old updated');
    await waitFor(() => fleet.alerts('old').some((a) => a.kind === 'update_done'), 60_000, 'update_done');
    expect(fleet.alerts('old').map((a) => a.kind)).toContain('version_mismatch');
    const deploy = await waitFor(() => { const r = fleet.db().deploys.list('test', 'old')[0]; return r && r.status !== 'running' && r; }, 60_000, 'the deploy row to finish');
    expect(deploy).toMatchObject({ status: 'ok', reason: 'behind' });
  });

  it('approve policy: files a request and waits; approving it runs the update', async () => {
    const req = await waitFor(() => fleet.db().requests.list().find((r) => r.action?.slave === 'gated' && r.action.kind === 'update'), 60_000, 'update request');
    expect(req).toMatchObject({ status: 'PENDING', type: 'INFRASTRUCTURE', action: { target_commit: fleet.commits.main } });
    await sleep(3000); // several sweeps: still waiting for a person
    expect(state('gated')).toBe('version_mismatch');
    expect(fleet.db().deploys.list('test', 'gated')).toHaveLength(0);
    expect(fleet.db().requests.list().filter((r) => r.action?.slave === 'gated')).toHaveLength(1);
    const a = await fleet.cli(['requests', 'approve', req.id, 'go ahead']);
    expect(a.code).toBe(0);
    await waitFor(() => fleet.slave('gated')?.commit === fleet.commits.main, 90_000, 'gated updated');
    await waitFor(() => fleet.db().requests.get(req.id).status === 'COMPLETED', 30_000, 'request completed');
    expect(fleet.alerts().some((x) => x.kind === 'human_request' && x.data.request_id === req.id)).toBe(true);
  });

  it('a killed agent goes pending, then dead, and is recovered by the daemon', async () => {
    await agents.victim.stop();
    const seen = new Set<string>();
    await waitFor(() => { seen.add(state('victim') ?? ''); return seen.has('dead') || (seen.has('pending') && fleet.db().deploys.list('test', 'victim').length > 0); }, 60_000, 'victim dead');
    expect(seen.has('pending')).toBe(true);
    await waitFor(() => state('victim') === 'healthy', 90_000, 'victim recovered');
    const kinds = fleet.alerts('victim').map((a) => a.kind);
    expect(kinds.filter((k) => k === 'slave_dead')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'slave_recovered')).toHaveLength(1);
    expect(kinds.indexOf('slave_dead')).toBeLessThan(kinds.indexOf('slave_recovered'));
    const deploy = await waitFor(() => { const r = fleet.db().deploys.list('test', 'victim')[0]; return r && r.status !== 'running' && r; }, 60_000, 'the deploy row to finish');
    expect(deploy).toMatchObject({ status: 'ok', reason: 'dead' });
  });

  it('a slave that cannot be recovered: bounded attempts, then an INFRASTRUCTURE request (high) and an alert', async () => {
    const req = await waitFor(() => fleet.db().requests.list().find((r) => r.type === 'INFRASTRUCTURE' && r.action?.slave === 'broken'), 90_000, 'escalation');
    expect(req.priority).toBe('high');
    expect(req.description).toMatch(/Build log: .*broken-\d+-build\.json/);
    expect(fleet.alerts('broken').filter((a) => a.kind === 'recovery_failed')).toHaveLength(1);
    const attempts = fleet.db().deploys.list('test', 'broken').length;
    expect(attempts).toBe(3);
    await sleep(4000); // escalated: no more attempts, no retry storm
    expect(fleet.db().deploys.list('test', 'broken').length).toBe(attempts);
  });

  it('the circuit breaker opens after consecutive failures and half-opens after the open period', async () => {
    const errors = () => fleet.db().slaves.history('test', 'broken', 200).reverse().map((h) => h.error ?? 'ok');
    await waitFor(() => {
      const e = errors();
      const firstOpen = e.findIndex((x) => x.includes('circuit breaker open'));
      return firstOpen >= 0 && e.slice(firstOpen).some((x) => x.includes('ECONNREFUSED'));
    }, 60_000, 'an open breaker, then a half-open probe');
    const e = errors();
    const firstOpen = e.findIndex((x) => x.includes('circuit breaker open'));
    expect(e.slice(0, firstOpen).filter((x) => x.includes('ECONNREFUSED')).length).toBeGreaterThanOrEqual(tuning.breakerFailures);
  });

  it('`d8 exec` runs on a healthy slave, returns its exit code, refuses an unhealthy one', async () => {
    const ok = await fleet.cli(['exec', 'steady', '--stack', 'test', '--repo', fleet.repo, '--', 'echo', 'hello-from-steady']);
    expect(ok).toMatchObject({ code: 0 });
    expect(ok.stdout).toContain('hello-from-steady');
    const code = await fleet.cli(['exec', 'steady', '--stack', 'test', '--repo', fleet.repo, '--', 'exit', '7']);
    expect(code.code).toBe(7);
    const refused = await fleet.cli(['exec', 'broken', '--stack', 'test', '--repo', fleet.repo, '--json', '--', 'true']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/broken is (dead|pending), not healthy/);
  });

  it('`d8 retry` while the daemon runs goes through the daemon and says what happened', async () => {
    const pid = Number(require('fs').readFileSync(path.join(fleet.agentsDir, 'victim.pid'), 'utf8'));
    process.kill(pid, 'SIGTERM');
    await waitFor(() => state('victim') !== 'healthy', 30_000, 'victim down');
    const r = await fleet.cli(['retry', 'victim', '--stack', 'test', '--repo', fleet.repo, '--json']);
    expect(r.stderr).not.toContain(fleet.token);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ ok: true, state: 'healthy' });
    expect(r.code).toBe(0);
    const cmd = fleet.db().db.prepare("SELECT status FROM control_commands WHERE slave = 'victim' ORDER BY id DESC").get() as { status: string };
    expect(cmd.status).toBe('done');
  });

  it('notices a new master HEAD within an interval and updates the auto slaves to it', async () => {
    const next = fleet.commitOnMain();
    await waitFor(() => fleet.db().master.get('test')?.commit === next, 30_000, 'master commit change');
    await waitFor(() => ['steady', 'old'].every((n) => fleet.slave(n)?.commit === next && state(n) === 'healthy'), 120_000, 'auto slaves on the new commit');
    const st = JSON.parse((await fleet.cli(['status', '--stack', 'test', '--repo', fleet.repo, '--json'])).stdout);
    expect(st.master.commit).toBe(next);
  });

  it('CLI processes and the daemon write the store at once without losing anything', async () => {
    const before = fleet.db().requests.list().length;
    const script = `
      const { openStore } = require(${JSON.stringify(path.join(REPO_ROOT, 'dist/master/store'))});
      const s = openStore(process.env.D8_HOME + '/master.db');
      for (let i = 0; i < 150; i++) s.requests.create({ type: 'PAYMENT', title: 'load ' + process.argv[1] + ' ' + i, created_by: 'load' });
      s.close();`;
    const run = (tag: string) => new Promise<number | null>((resolve) => {
      const c = spawn(process.execPath, ['-e', script, tag], { env: fleet.env(), stdio: 'inherit' });
      c.on('exit', resolve);
    });
    const codes = await Promise.all([run('a'), run('b'), fleet.cli(['requests', 'create', '--type', 'PAYMENT', '--title', 'from the cli']).then((r) => r.code)]);
    expect(codes).toEqual([0, 0, 0]);
    const all = fleet.db().requests.list();
    const load = all.filter((r) => r.created_by === 'load');
    expect(load).toHaveLength(300);
    expect(new Set(all.map((r) => r.id)).size).toBe(all.length);
    expect(all.length).toBeGreaterThanOrEqual(before + 301);
    // every creation has its alert, delivered by the daemon's dispatcher
    await waitFor(() => fleet.db().outbox.pendingCount() === 0, 60_000, 'outbox drained');
    const announced = new Set(fleet.alerts().filter((a) => a.kind === 'human_request').map((a) => a.data.request_id));
    for (const r of load) expect(announced.has(r.id)).toBe(true);
  });

  it('restarted mid-run it keeps its state and sends no duplicate alerts', async () => {
    const before = fleet.alerts().filter((a) => a.kind !== 'human_request' && a.kind !== 'request_changed').length;
    const states = Object.fromEntries(fleet.db().slaves.list('test').map((s) => [s.name, s.state]));
    expect(states.broken).toBe('dead');
    const code = await fleet.stopDaemon(daemon.child);
    expect(code).toBe(0);
    expect(daemon.log()).toContain('"msg":"stopped"');
    expect(fleet.db().master.get('test')?.stopped_at).not.toBeNull();
    daemon = fleet.daemon({ tuning, env, logName: 'daemon-restarted.log' });
    await waitFor(() => daemon.log().includes('supervising'), 30_000, 'daemon restarted');
    const t0 = Date.now();
    await waitFor(() => (fleet.slave('steady')?.last_check ?? '') > new Date(t0 + 3000).toISOString(), 60_000, 'several sweeps after the restart');
    expect(fleet.slave('broken')?.state).toBe('dead');
    expect(fleet.db().deploys.list('test', 'broken').length).toBe(3); // still escalated: no new attempts
    const after = fleet.alerts().filter((a) => a.kind !== 'human_request' && a.kind !== 'request_changed').length;
    expect(after).toBe(before);
    expect(daemon.log()).not.toContain(fleet.token);
  });
});
