/**
 * Recovery steps with a real `d8 master` (issue 10, defect 8, and the deploy error kinds): an agent
 * that is reachable but hangs (SIGSTOP: TCP still accepted, no answer) and a process on the agent's
 * port that answers with the wrong schema are restarted first, then redeployed, then escalated, in
 * that order; a hung agent whose redeploy works comes back; a deploy refused for auth is escalated
 * at once instead of being retried as "host down".
 */
import http from 'http';
import { Fleet, freePort, waitFor } from './master-support/fleet';
import type { AgentHandle } from '../support/agent-process';

jest.setTimeout(300_000);

type Step = { action: string; ok: boolean; at: string; error: string | null };

describe('d8 master recovery: restart, then redeploy, then escalate (real processes)', () => {
  const fleet = new Fleet('recovery');
  const agents: Record<string, AgentHandle> = {};
  let impostor: http.Server;
  let daemon: ReturnType<Fleet['daemon']>;

  beforeAll(async () => {
    const specs = [
      { name: 'frozen', port: await freePort() },
      { name: 'impostor', port: await freePort() },
      { name: 'hung', port: await freePort() },
      { name: 'locked', port: await freePort() },
    ];
    const port = (n: string) => specs.find((s) => s.name === n)!.port;
    const c = fleet.initRepo(specs);
    agents.frozen = await fleet.agent('frozen', port('frozen'), c.main);
    agents.hung = await fleet.agent('hung', port('hung'), c.main);
    agents.locked = await fleet.agent('locked', port('locked'), c.main);
    // Something else on the agent's port: it answers every request, but not with the agent's protocol.
    impostor = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"hello":"world"}'); });
    await new Promise<void>((r) => impostor.listen(port('impostor'), '127.0.0.1', r));
    daemon = fleet.daemon({
      tuning: { recoveryAttempts: 2, checkDeadlineMs: 2000, attemptTimeoutMs: 700, settleMs: 4000 },
      env: { D8_TEST_DEPLOY_FAIL: 'frozen,impostor,locked:auth' },
    });
    await waitFor(() => ['frozen', 'hung', 'locked'].every((n) => fleet.slave(n)?.state === 'healthy'), 60_000, 'agents healthy');
    process.kill(agents.frozen.pid, 'SIGSTOP');
    process.kill(agents.hung.pid, 'SIGSTOP');
    await agents.locked.stop();
  });
  afterAll(async () => {
    for (const a of [agents.frozen, agents.hung]) try { process.kill(a.pid, 'SIGKILL'); } catch { /* gone */ }
    await new Promise((r) => impostor.close(r));
    await fleet.cleanup();
  });

  const escalation = (slave: string) => fleet.db().requests.list().find((r) => r.action?.slave === slave && r.type === 'INFRASTRUCTURE');

  it.each(['frozen', 'impostor'])('%s: the restart is tried first, then the redeploy, then a person is asked', async (slave) => {
    const req = await waitFor(() => escalation(slave), 150_000, `${slave} escalated`);
    expect(req.priority).toBe('high');
    const history = fleet.db().slaves.history('recovery', slave, 200);
    // reachable: the check saw an answer it could not use, or an open port with no answer
    expect(history.some((h) => slave === 'frozen' ? /accepts connections but the agent does not answer/.test(h.error ?? '') : /invalid \/api\/health answer/.test(h.error ?? ''))).toBe(true);

    const failure = fleet.alerts(slave).find((a) => a.kind === 'recovery_failed')!;
    expect(failure).toBeDefined();
    const steps = failure.data.steps as Step[];
    expect(steps.map((s) => `${s.action}:${s.ok}`)).toEqual(['restart:false', 'redeploy:false']);
    expect(steps[0].error).toMatch(/restart refused/);
    expect(failure.data).toMatchObject({ attempt: 2, request_id: req.id, error_kind: 'install_failed' });

    const deploys = fleet.db().deploys.list('recovery', slave).reverse();
    expect(deploys).toHaveLength(2);
    const last = deploys[1];
    expect(last).toMatchObject({ status: 'failed', reason: 'dead' });
    // in that order: restart, redeploy, escalation
    expect(steps[0].at <= last.started_at).toBe(true);
    expect(last.started_at <= steps[1].at).toBe(true);
    expect(steps[1].at <= req.created_at).toBe(true);
    const kinds = fleet.alerts(slave).map((a) => a.kind);
    expect(kinds.indexOf('slave_dead')).toBeLessThan(kinds.indexOf('recovery_failed'));
    expect(kinds.indexOf('recovery_failed')).toBeLessThan(kinds.indexOf('human_request'));
  });

  it('hung: the restart request times out too, the redeploy replaces the hung agent, and it is healthy again', async () => {
    await waitFor(() => fleet.alerts('hung').some((a) => a.kind === 'slave_recovered'), 150_000, 'hung recovered');
    expect(fleet.slave('hung')?.state).toBe('healthy');
    const deploys = fleet.db().deploys.list('recovery', 'hung');
    expect(deploys[deploys.length - 1]).toMatchObject({ status: 'ok', reason: 'dead' });
    const restart = daemon.log().split('\n').filter((l) => l.includes('hung: restart did not bring it back')).map((l) => JSON.parse(l));
    expect(restart.length).toBeGreaterThanOrEqual(1);
    expect(restart[0].err).toMatch(/restart refused: (deadline exceeded|timeout)/);
    expect(new Date(restart[0].time).toISOString() <= deploys[deploys.length - 1].started_at).toBe(true);
    expect(escalation('hung')).toBeUndefined();
  });

  it('locked: a deploy refused for auth is escalated after one attempt, naming the fix, and not retried', async () => {
    const req = await waitFor(() => escalation('locked'), 120_000, 'locked escalated');
    expect(fleet.db().deploys.list('recovery', 'locked')).toHaveLength(1);
    expect(req.description).toMatch(/authorized_keys/);
    const failure = fleet.alerts('locked').find((a) => a.kind === 'recovery_failed')!;
    expect(failure.data).toMatchObject({ attempt: 1, error_kind: 'auth' });
    const t0 = fleet.slave('locked')!.last_check!;
    await waitFor(() => fleet.db().slaves.history('recovery', 'locked', 200).filter((h) => h.at > t0).length >= 4, 60_000, 'more sweeps');
    expect(fleet.db().deploys.list('recovery', 'locked')).toHaveLength(1);
  });
});
