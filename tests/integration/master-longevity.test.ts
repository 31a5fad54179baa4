/**
 * Issue 23, what only time brings out, with a real `d8 master` child process, real agents on
 * loopback and the real store (the spawn deployer restarts the real agent instead of install.sh):
 * - 1,001 auto-approved API requests (no action, APPROVED for ever), then a person approves an
 *   update request: it still runs;
 * - rows written by a newer version (an unknown action kind, an unknown control command) are set
 *   aside with one log line, and a killed agent is still recovered;
 * - a store that refuses writes (a SQLite error at the write, raised by a trigger in the real
 *   database) fails one phase, not the master: the other phases run, the failed one runs again.
 */
import fs from 'fs';
import path from 'path';
import { Fleet, freePort, waitFor } from './master-support/fleet';
import { loadFleetConfig } from '../../core/stack-config';
import { fileRequest } from '../../master/requests/intake';

jest.setTimeout(240_000);

const lines = (log: string, re: RegExp) => log.split('\n').filter((l) => re.test(l));

describe('a master with more than 1,000 approved requests (real processes)', () => {
  const fleet = new Fleet();

  beforeAll(async () => {
    const port = await freePort();
    const c = fleet.initRepo([{ name: 'gated', port, autoUpdate: 'approve' }], {
      approvalRules: [{ type: 'PAYMENT', maxCost: 20, then: 'approve' }],
    });
    await fleet.agent('gated', port, c.base);
    // What 1,001 calls of POST /api/requests do: the API's own intake, the stack's own rules.
    const config = loadFleetConfig(fleet.repo, 'test', process.env, { requireSshKey: false });
    for (let i = 0; i < 1001; i++) {
      const r = fileRequest(fleet.db(), config, { type: 'PAYMENT', title: `renewal ${i}`, estimated_cost: 1 }, 'api:shop');
      if (r.status !== 'APPROVED') throw new Error(`request ${i} was not auto-approved: ${r.status}`);
    }
    fleet.daemon();
  });
  afterAll(() => fleet.cleanup());

  it('a person approves the update request filed after them: the update runs and the request is completed', async () => {
    expect(fleet.db().db.prepare("SELECT COUNT(*) AS n FROM human_requests WHERE status = 'APPROVED' AND action IS NULL").get()).toEqual({ n: 1001 });
    const req = await waitFor(() => fleet.db().requests.list({ status: 'PENDING' }).find((r) => r.action?.slave === 'gated' && r.action.kind === 'update'), 60_000, 'the update request');
    const a = await fleet.cli(['requests', 'approve', req.id, 'go ahead']);
    expect(a.code).toBe(0);
    await waitFor(() => fleet.slave('gated')?.commit === fleet.commits.main, 60_000, 'gated updated');
    await waitFor(() => fleet.db().requests.get(req.id).status === 'COMPLETED', 30_000, 'request completed');
    expect(fleet.db().requests.get(req.id).notes).toMatch(/COMPLETED: done/);
    expect(fleet.db().deploys.list('test', 'gated')[0]).toMatchObject({ status: 'ok', reason: 'manual' });
  });
});

describe('a master with rows it cannot read and a store that refuses writes (real processes)', () => {
  const fleet = new Fleet();
  let daemon: ReturnType<Fleet['daemon']>;
  const db = () => fleet.db().db;
  const alive = () => daemon.child.exitCode === null && daemon.child.signalCode === null;

  async function killAndAwaitRecovery(): Promise<void> {
    const before = fleet.db().deploys.list('test', 'victim').length;
    // The agent running now: ours the first time, then the one the deployer started (its pid file).
    const pid = Number(fs.readFileSync(path.join(fleet.agentsDir, 'victim.pid'), 'utf8').trim());
    process.kill(pid, 'SIGKILL');
    await waitFor(() => fleet.db().deploys.list('test', 'victim').length > before, 60_000, 'a redeploy of victim');
    await waitFor(() => fleet.slave('victim')?.state === 'healthy', 60_000, 'victim recovered');
  }

  beforeAll(async () => {
    const specs = [{ name: 'victim', port: await freePort() }, { name: 'steady', port: await freePort() }];
    const c = fleet.initRepo(specs);
    await fleet.agent('victim', specs[0].port, c.main);
    await fleet.agent('steady', specs[1].port, c.main);
    // Written by a newer version: an approved request with an action kind this one does not know,
    // and a control command of a kind it does not know.
    const now = new Date().toISOString();
    db().prepare(`INSERT INTO human_requests (seq, id, type, status, title, description, priority, estimated_cost, created_by, notes, action, created_at, updated_at, approved_at)
      VALUES (1, 'req-0001', 'INFRASTRUCTURE', 'APPROVED', 'drain victim', '', 'normal', NULL, 'master', NULL, ?, ?, ?, ?)`)
      .run(JSON.stringify({ kind: 'drain', slave: 'victim' }), now, now, now);
    db().prepare("INSERT INTO control_commands (stack, kind, slave, status, created_at) VALUES ('test', 'drain', 'steady', 'queued', ?)").run(now);
    daemon = fleet.daemon();
    await waitFor(() => fleet.slave('victim')?.state === 'healthy' && fleet.slave('steady')?.state === 'healthy', 60_000, 'both healthy');
  });
  afterAll(async () => {
    db().exec('DROP TRIGGER IF EXISTS refuse_results; DROP TRIGGER IF EXISTS refuse_heartbeat');
    await fleet.cleanup();
  });

  it('an unknown action kind and an unknown command are set aside with one log line each; a killed agent is recovered', async () => {
    await killAndAwaitRecovery();
    const log = daemon.log();
    expect(lines(log, /human_requests row is not readable/)).toHaveLength(1);
    expect(lines(log, /human_requests row is not readable/)[0]).toMatch(/req-0001/);
    expect(lines(log, /control_commands row is not readable/)).toHaveLength(1);
    const cmd = db().prepare("SELECT status, result FROM control_commands WHERE kind = 'drain'").get() as { status: string; result: string };
    expect(cmd.status).toBe('done');
    expect(JSON.parse(cmd.result)).toMatchObject({ ok: false, message: expect.stringMatching(/written by another version/) });
    // Left in the store for the version that wrote it.
    expect(fleet.db().requests.list().map((r) => r.id)).not.toContain('req-0001');
    expect((db().prepare("SELECT status FROM human_requests WHERE id = 'req-0001'").get() as { status: string }).status).toBe('APPROVED');
  });

  it('a control command whose result the store refuses does not kill the master; the result is written once the store takes it', async () => {
    db().exec(`CREATE TRIGGER refuse_results BEFORE UPDATE OF status ON control_commands WHEN NEW.status = 'done'
      BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`);
    const id = fleet.db().commands.enqueue('test', 'retry', 'steady');
    await waitFor(() => !alive() || /cannot record the result of control command/.test(daemon.log()), 30_000, 'the refused result');
    expect(alive()).toBe(true);
    db().exec('DROP TRIGGER refuse_results');
    const done = await waitFor(() => { const c = fleet.db().commands.get(id); return c?.status === 'done' ? c : null; }, 30_000, 'the result written');
    expect(done.result).toMatchObject({ ok: true, action: 'check' });
    await killAndAwaitRecovery();
    expect(alive()).toBe(true);
    expect(daemon.log()).not.toMatch(/unhandled rejection/);
  });

  it('a sweep phase that throws (the heartbeat refused) leaves the others running: a killed agent is still recovered', async () => {
    db().exec("CREATE TRIGGER refuse_heartbeat BEFORE UPDATE ON master_info BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END");
    try {
      await killAndAwaitRecovery();
      expect(lines(daemon.log(), /"phase":"heartbeat".*failed \(the other phases ran/).length).toBeGreaterThan(0);
      expect(alive()).toBe(true);
    } finally {
      db().exec('DROP TRIGGER IF EXISTS refuse_heartbeat');
    }
  });
});
