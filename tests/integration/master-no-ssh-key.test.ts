/**
 * A monitoring master without an SSH key (issue 10, defect 6): a real `d8 master` (real direct
 * deployer) with remote slaves and no key starts, says once what it cannot do and why, keeps
 * checking and alerting, and turns an update or a recovery that needs SSH into a human request
 * naming the fix.
 */
import http from 'http';
import { Fleet, freePort, waitFor, sleep } from './master-support/fleet';
import type { AgentHandle } from '../support/agent-process';

jest.setTimeout(180_000);

describe('d8 master without an SSH key (real processes)', () => {
  const fleet = new Fleet('keyless');
  const agents: Record<string, AgentHandle> = {};
  let daemon: ReturnType<Fleet['daemon']>;
  let impostor: http.Server;

  beforeAll(async () => {
    const specs = [
      { name: 'watched', port: await freePort(), host: '127.0.0.1', user: 'd8', autoUpdate: 'off' as const },
      { name: 'stale', port: await freePort(), host: '127.0.0.1', user: 'd8' },
      { name: 'odd', port: await freePort(), host: '127.0.0.1', user: 'd8', autoUpdate: 'off' as const },
    ];
    const c = fleet.initRepo(specs);
    agents.watched = await fleet.agent('watched', specs[0].port, c.main);
    agents.stale = await fleet.agent('stale', specs[1].port, c.base);
    // Answers HTTP, but not as an agent: a restart is possible to try without SSH, a redeploy is not.
    impostor = http.createServer((_q, res) => res.end('not json'));
    await new Promise<void>((r) => impostor.listen(specs[2].port, '127.0.0.1', r));
    daemon = fleet.daemon({ realDeployer: true });
  });
  afterAll(async () => {
    await new Promise((r) => impostor.close(r));
    await fleet.cleanup();
  });

  it('starts, and says once which actions are unavailable and how to enable them', async () => {
    await waitFor(() => fleet.slave('watched')?.state === 'healthy', 60_000, 'watched checked healthy');
    const lines = daemon.log().split('\n').filter((l) => l.includes('"msg":"no SSH key configured:'));
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]);
    expect(line.level).toBe(40);
    expect(line.slaves).toEqual(['watched', 'stale', 'odd']);
    expect(line.msg).toMatch(/redeploy and update are unavailable/);
    expect(line.msg).toContain('D8_SSH_KEY_PATH');
  });

  it('an auto-update that needs SSH becomes one request naming the fix, not a failing deploy', async () => {
    await waitFor(() => fleet.slave('stale')?.state === 'version_mismatch', 60_000, 'stale seen behind');
    const req = await waitFor(() => fleet.db().requests.list().find((r) => r.action?.slave === 'stale'), 30_000, 'a request for stale');
    expect(req.title).toMatch(/no SSH key/);
    expect(req.description).toContain('D8_SSH_KEY_PATH');
    expect(req.action).toMatchObject({ kind: 'update', target_commit: fleet.commits.main });
    await sleep(3000);
    expect(fleet.db().requests.list().filter((r) => r.action?.slave === 'stale')).toHaveLength(1);
    expect(fleet.db().deploys.list('keyless', 'stale')).toHaveLength(0);
    expect(fleet.alerts('stale').map((a) => a.kind)).toContain('version_mismatch');
  });

  it('a dead slave is still alerted on, and its recovery becomes a high-priority request naming the fix', async () => {
    await agents.watched.stop();
    await waitFor(() => fleet.slave('watched')?.state === 'dead', 60_000, 'watched dead');
    const req = await waitFor(() => fleet.db().requests.list().find((r) => r.action?.slave === 'watched'), 30_000, 'the escalation');
    expect(req).toMatchObject({ type: 'INFRASTRUCTURE', priority: 'high', action: { kind: 'retry' } });
    expect(req.description).toContain('D8_SSH_KEY_PATH');
    await waitFor(() => fleet.alerts('watched').some((a) => a.kind === 'recovery_failed'), 30_000, 'the failure alert');
    const kinds = fleet.alerts('watched').map((a) => a.kind);
    expect(kinds).toContain('slave_dead');
    const failure = fleet.alerts('watched').find((a) => a.kind === 'recovery_failed')!;
    expect(failure.data).toMatchObject({ error_kind: 'no_ssh_key', request_id: req.id });
    await sleep(3000);
    expect(fleet.db().requests.list().filter((r) => r.action?.slave === 'watched')).toHaveLength(1);
    expect(fleet.db().deploys.list('keyless', 'watched')).toHaveLength(0);
    expect(fleet.slave('watched')?.last_check ?? '').not.toBe('');
    expect(daemon.child.exitCode).toBeNull();
    expect(daemon.log().split('\n').filter((l) => l.includes('"msg":"no SSH key configured:'))).toHaveLength(1);
  });

  it('an agent that answers HTTP is still restarted without a key; when that fails, a person is asked at once', async () => {
    const req = await waitFor(() => fleet.db().requests.list().find((r) => r.action?.slave === 'odd'), 60_000, 'the escalation of odd');
    expect(req.description).toContain('D8_SSH_KEY_PATH');
    const failure = await waitFor(() => fleet.alerts('odd').find((a) => a.kind === 'recovery_failed'), 30_000, 'the failure alert');
    expect((failure.data.steps as Array<{ action: string; ok: boolean; error_kind: string | null }>).map((s) => `${s.action}:${s.ok}:${s.error_kind}`))
      .toEqual(['restart:false:null', 'redeploy:false:no_ssh_key']);
    expect(failure.data).toMatchObject({ attempt: 1, error_kind: 'no_ssh_key', request_id: req.id });
    expect(fleet.db().deploys.list('keyless', 'odd')).toHaveLength(0);
  });
});
