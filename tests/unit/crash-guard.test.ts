/** master/daemon/crash-guard.ts in a real node process: a stray rejection is logged and the process runs on; an uncaught exception is one fatal line and exit 70. */
import { spawnSync } from 'child_process';
import path from 'path';
import { MASTER_FATAL_EXIT } from '../../master/daemon/crash-guard';

const DIST = path.resolve(__dirname, '..', '..', 'dist');

it('an unhandled rejection is logged and the process keeps running; an uncaught exception exits 70 with one fatal line', () => {
  const script = `
    const { guardMasterProcess } = require(${JSON.stringify(path.join(DIST, 'master', 'daemon', 'crash-guard.js'))});
    const { createLogger } = require(${JSON.stringify(path.join(DIST, 'core', 'logger.js'))});
    guardMasterProcess(createLogger({ name: 'd8-master' }));
    Promise.reject(new Error('SQLITE_BUSY: database is locked'));
    setTimeout(() => { process.stdout.write('still running\\n'); setTimeout(() => { throw new Error('boom'); }, 10); }, 50);
    setTimeout(() => process.stdout.write('not reached\\n'), 5000);`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH, D8_LOG_FORMAT: 'json' }, timeout: 30_000 });
  expect(r.status).toBe(MASTER_FATAL_EXIT);
  expect(r.stdout).toBe('still running\n');
  const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string });
  expect(lines.map((l) => [l.level, l.msg])).toEqual([
    [50, 'unhandled rejection (a bug; the master keeps running): SQLITE_BUSY: database is locked'],
    [60, `fatal: boom; the master exits ${MASTER_FATAL_EXIT} for its service manager to restart it`],
  ]);
});
