/**
 * The dev stack's "healthy fleet of one" (the daemon deploys its missing local slave itself) and
 * SIGTERM during a deploy: it finishes within the grace period, or is marked interrupted; exit 0.
 */
import fs from 'fs';
import path from 'path';
import { Fleet, freePort, waitFor, SPAWN_DEPLOYER } from './master-support/fleet';

jest.setTimeout(240_000);

describe('d8 master lifecycle (dev stack, SIGTERM)', () => {
  const fleet = new Fleet('dev');
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    fleet.initRepo([{ name: 'local', port }]);
  });
  afterAll(() => fleet.cleanup());

  const killAgent = () => {
    const pid = Number(fs.readFileSync(path.join(fleet.agentsDir, 'local.pid'), 'utf8'));
    process.kill(pid, 'SIGTERM');
  };

  it('on the dev stack, deploys the missing local slave right away', async () => {
    const d = fleet.daemon();
    try {
      await waitFor(() => fleet.slave('local')?.state === 'healthy', 90_000, 'local healthy');
      await waitFor(() => fleet.db().deploys.list('dev', 'local').every((r) => r.status !== 'running'), 60_000, 'the deploy to finish');
      const deploys = fleet.db().deploys.list('dev', 'local');
      expect(deploys).toHaveLength(1);
      expect(deploys[0]).toMatchObject({ reason: 'missing', status: 'ok', commit: fleet.commits.main });
      expect(fleet.alerts('local').filter((a) => a.kind === 'slave_dead')).toHaveLength(0); // fixed before it was ever dead
    } finally {
      expect(await fleet.stopDaemon(d.child)).toBe(0);
    }
  });

  it('SIGTERM lets an in-flight deploy finish within the grace period', async () => {
    killAgent();
    const d = fleet.daemon({ env: { D8_TEST_DEPLOY_DELAY_MS: '3000' }, tuning: { stopGraceMs: 30_000 } });
    await waitFor(() => fleet.db().deploys.list('dev', 'local').find((r) => r.status === 'running'), 60_000, 'a running deploy');
    const code = await fleet.stopDaemon(d.child);
    expect(code).toBe(0);
    expect(fleet.db().deploys.list('dev', 'local')[0]).toMatchObject({ status: 'ok', reason: 'dead' });
  });

  it('SIGTERM marks a deploy that outlives the grace period as interrupted, and exits 0', async () => {
    killAgent();
    const d = fleet.daemon({ env: { D8_TEST_DEPLOY_DELAY_MS: '20000' }, tuning: { stopGraceMs: 1000 } });
    const running = await waitFor(() => fleet.db().deploys.list('dev', 'local').find((r) => r.status === 'running'), 60_000, 'a running deploy');
    const t0 = Date.now();
    const code = await fleet.stopDaemon(d.child);
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    const row = fleet.db().deploys.list('dev', 'local').find((r) => r.id === running.id)!;
    expect(row.status).toBe('interrupted');
    expect(d.log()).toContain('marked interrupted');
  });

  it('`d8 retry` without a running daemon recovers the slave from the CLI process', async () => {
    expect(fleet.db().master.isRunning('dev', 90_000)).toBe(false);
    const r = await fleet.cli(['retry', 'local', '--stack', 'dev', '--repo', fleet.repo], { D8_DEPLOYER_MODULE: SPAWN_DEPLOYER });
    expect(r.stderr).toContain('retrying local from this process');
    expect(r.stdout).toMatch(/^ok: local is back \(healthy, [0-9a-f]{7}\)/);
    expect(r.code).toBe(0);
    expect(fleet.slave('local')?.state).toBe('healthy');
    const again = await fleet.cli(['retry', 'local', '--stack', 'dev', '--repo', fleet.repo, '--json'], { D8_DEPLOYER_MODULE: SPAWN_DEPLOYER });
    expect(JSON.parse(again.stdout)).toMatchObject({ ok: true, action: 'check' });
    const unknown = await fleet.cli(['retry', 'nope', '--stack', 'dev', '--repo', fleet.repo]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('has no slave named "nope" (it has: local)');
  });

  it('`d8 update` redeploys a healthy slave from the CLI process and reports the master\'s commit', async () => {
    const before = fleet.slave('local');
    expect(before?.state).toBe('healthy');
    const r = await fleet.cli(['update', 'local', '--stack', 'dev', '--repo', fleet.repo, '--json'], { D8_DEPLOYER_MODULE: SPAWN_DEPLOYER });
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as { ok: boolean; action: string; message: string };
    expect(result.ok).toBe(true);
    expect(result.action).not.toBe('check');
    const deploys = fleet.db().deploys.list('dev', 'local');
    expect(deploys[0].reason).toBe('manual');
    expect(fleet.slave('local')?.state).toBe('healthy');
  });

  it('`d8 update` whose deploy fails exits with that failure kind\'s code, and --json names the kind', async () => {
    const failing = { D8_DEPLOYER_MODULE: SPAWN_DEPLOYER, D8_TEST_DEPLOY_FAIL: 'local:host_key' };
    const r = await fleet.cli(['update', 'local', '--stack', 'dev', '--repo', fleet.repo, '--json'], failing);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, action: 'update', error_kind: 'host_key' });
    expect(r.code).toBe(13);
    const timeout = await fleet.cli(['update', 'local', '--stack', 'dev', '--repo', fleet.repo], { ...failing, D8_TEST_DEPLOY_FAIL: 'local:timeout' });
    expect(timeout.stdout).toMatch(/^failed: /);
    expect(timeout.code).toBe(14);
    const help = await fleet.cli(['update', '--help']);
    expect(help.stdout).toContain('13  host_key');
  });
});
