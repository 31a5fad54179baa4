/** Retention of deploy history, build logs and control commands (issue 23 defect 7): a real store and real files. */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { useTempStore } from '../support/temp-store';
import { pruneHistory } from '../../master/store/retention';
import { resolveFleetConfig } from '../../core/stack-config';
import type { DeployResult } from '../../core/deploy-result';
import type { Store } from '../../master/store';

const T0 = Date.UTC(2030, 0, 10, 12, 0, 0);
const MIN = 60_000;
const DAY = 86_400_000;

describe('history retention', () => {
  const store = useTempStore();
  let home = '';
  let logs = '';
  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-retention-'));
    logs = path.join(home, 'build_logs');
    fs.mkdirSync(logs);
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  /** A finished deploy of `slave` at `at` whose build log is a real file (mtime `at`). */
  function deploy(s: Store, slave: string, at: number, file: string | null = path.join(logs, `build_${slave}_${at}.json`)): number {
    const id = s.deploys.start('prod', slave, 'direct', 'update', at);
    if (file) {
      fs.writeFileSync(file, '{}\n');
      fs.utimesSync(file, new Date(at), new Date(at));
    }
    const r: DeployResult = { slave, engine: 'direct', status: 'failed', ok: false, strategy: null, attempts: [], commit: null, buildLogPath: file, error: 'install failed', errorKind: 'install_failed', durationMs: 1 };
    s.deploys.finish(id, r, undefined, at + 1000);
    return id;
  }
  const rows = (s: Store, slave: string) => s.deploys.list('prod', slave, 1000);
  const files = () => fs.readdirSync(logs).sort();

  it('keeps the newest N deploys per slave with their build logs, and of those only M days (the newest always)', () => {
    const s = store();
    // A slave that cannot update: 30 forced deploys, one a minute, each with its build log.
    const ids = Array.from({ length: 30 }, (_, i) => deploy(s, 'stuck', T0 + i * MIN));
    const running = s.deploys.start('prod', 'stuck', 'direct', 'update', T0 + 31 * MIN);
    const other = [deploy(s, 'fine', T0), deploy(s, 'fine', T0 + MIN)];
    const otherStack = s.deploys.start('dev', 'stuck', 'direct', 'update', T0);
    s.deploys.fail(otherStack, 'x', T0);

    const r1 = pruneHistory(s.db, { stack: 'prod', policy: { perSlave: 20, days: 30 }, buildLogDir: logs, now: T0 + 40 * MIN });
    expect(r1).toEqual({ deploys: 10, commands: 0, buildLogs: 10, requests: 0, alerts: 0 });
    expect(rows(s, 'stuck').map((d) => d.id)).toEqual([running, ...ids.slice(10).reverse()]);
    expect(rows(s, 'fine').map((d) => d.id)).toEqual([...other].reverse());
    expect(files()).toEqual([...ids.slice(10).map((_, i) => `build_stuck_${T0 + (i + 10) * MIN}.json`), `build_fine_${T0}.json`, `build_fine_${T0 + MIN}.json`].sort());

    // 31 days on: each slave keeps only its newest finished deploy (and the running one stays).
    const r2 = pruneHistory(s.db, { stack: 'prod', policy: { perSlave: 20, days: 30 }, buildLogDir: logs, now: T0 + 31 * DAY });
    expect(r2).toEqual({ deploys: 20, commands: 0, buildLogs: 20, requests: 0, alerts: 0 });
    expect(rows(s, 'stuck').map((d) => d.id)).toEqual([running, ids[29]]);
    expect(rows(s, 'fine').map((d) => d.id)).toEqual([other[1]]);
    expect(files()).toEqual([`build_fine_${T0 + MIN}.json`, `build_stuck_${T0 + 29 * MIN}.json`]);
    expect(s.deploys.list('dev', 'stuck')).toHaveLength(1);
  });

  it('removes a build log no row names once it is older than the window; a row whose file is gone, or outside build_logs, is fine', () => {
    const s = store();
    const outside = path.join(home, 'not-a-build-log.json');
    for (let i = 0; i < 3; i++) deploy(s, 'a', T0 + i * MIN, outside);
    const gone = deploy(s, 'a', T0 + 3 * MIN);
    fs.unlinkSync(rows(s, 'a').find((d) => d.id === gone)!.build_log_path!);
    for (let i = 4; i < 6; i++) deploy(s, 'a', T0 + i * MIN);
    const orphan = (name: string, at: number) => {
      const f = path.join(logs, name);
      fs.writeFileSync(f, '{}\n');
      fs.utimesSync(f, new Date(at), new Date(at));
    };
    orphan('build_a_crashed_old.json', T0 - 31 * DAY);
    orphan('build_a_old.json.123.tmp', T0 - 31 * DAY);
    orphan('build_a_crashed_new.json', T0 - 29 * DAY);

    const r = pruneHistory(s.db, { stack: 'prod', policy: { perSlave: 2, days: 30 }, buildLogDir: logs, now: T0 + 10 * MIN });
    expect(r).toEqual({ deploys: 4, commands: 0, buildLogs: 2, requests: 0, alerts: 0 });
    expect(fs.existsSync(outside)).toBe(true);
    expect(files()).toEqual([`build_a_${T0 + 4 * MIN}.json`, `build_a_${T0 + 5 * MIN}.json`, 'build_a_crashed_new.json']);
  });

  it('keeps the newest N done control commands per slave and never a queued or running one', () => {
    const s = store();
    const done = Array.from({ length: 25 }, (_, i) => {
      const id = s.commands.enqueue('prod', 'update', 'stuck', T0 + i * MIN);
      s.commands.finish(id, { ok: false, action: 'update', message: 'failed' }, T0 + i * MIN + 1000);
      return id;
    });
    const claimed = s.commands.enqueue('prod', 'retry', 'stuck', T0 - 40 * DAY);
    s.commands.claim('prod');
    const queued = s.commands.enqueue('prod', 'retry', 'stuck', T0 - 40 * DAY);

    expect(pruneHistory(s.db, { stack: 'prod', policy: { perSlave: 20, days: 30 }, buildLogDir: logs, now: T0 + 30 * MIN }).commands).toBe(5);
    const left = (s.db.prepare('SELECT id FROM control_commands ORDER BY id').all() as Array<{ id: number }>).map((r) => r.id);
    expect(left).toEqual([...done.slice(5), claimed, queued]);
    expect(pruneHistory(s.db, { stack: 'prod', policy: { perSlave: 20, days: 30 }, buildLogDir: logs, now: T0 + 31 * DAY }).commands).toBe(19);
    expect(s.commands.get(done[24])?.status).toBe('done');
    expect(s.commands.get(claimed)?.status).toBe('running');
    expect(s.commands.get(queued)?.status).toBe('queued');
  });

  it('defaults: 20 per slave and 30 days, set by d8:retention', () => {
    expect(resolveFleetConfig({}, { stack: 'prod' }).retention).toMatchObject({ perSlave: 20, days: 30 });
    expect(resolveFleetConfig({ retention: { perSlave: 5 } }, { stack: 'prod' }).retention).toMatchObject({ perSlave: 5, days: 30 });
    expect(() => resolveFleetConfig({ retention: { perSlave: 0 } }, { stack: 'prod' })).toThrow(/d8:retention.perSlave/);
  });
});
