/** Deploys left `running` by a master that is gone are reaped, also when the pid was reused (issue 23 defect 4). */
import { spawn, type ChildProcess } from 'child_process';
import { useTempStore } from '../support/temp-store';
import { processStartTime } from '../../master/store/deploy-locks';

describe('deploy history: reaping orphaned running rows', () => {
  const store = useTempStore();
  let child: ChildProcess | null = null;
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child!.once('exit', r));
    }
    child = null;
  });

  it('a running row whose pid is alive but belongs to another process (another start time: a reboot reused it) is reaped', async () => {
    child = spawn('sleep', ['30']);
    await new Promise((r) => child!.once('spawn', r));
    const start = processStartTime(child.pid!);
    expect(start).toMatch(/^\d+$/);
    const s = store();
    const reused = s.deploys.start('prod', 'box', 'direct', 'update');
    const same = s.deploys.start('prod', 'other', 'direct', 'update');
    const mine = s.deploys.start('prod', 'third', 'direct', 'update');
    const set = s.db.prepare('UPDATE deploy_history SET pid = ?, proc_start = ? WHERE id = ?');
    set.run(child.pid, String(Number(start) + 1), reused); // the previous boot's master had this pid
    set.run(child.pid, start, same); // the process that started it still runs

    expect(s.deploys.reapOrphans('prod')).toBe(1);
    const status = (id: number) => s.deploys.list('prod', undefined, 10).find((d) => d.id === id)?.status;
    expect(status(reused)).toBe('interrupted');
    expect(status(same)).toBe('running');
    expect(status(mine)).toBe('running');
  });

  it('a row from before start times were recorded (proc_start NULL) is judged by its pid alone', async () => {
    child = spawn('sleep', ['30']);
    await new Promise((r) => child!.once('spawn', r));
    const s = store();
    const alive = s.deploys.start('prod', 'box', 'direct', 'update');
    const dead = s.deploys.start('prod', 'other', 'direct', 'update');
    const set = s.db.prepare('UPDATE deploy_history SET pid = ?, proc_start = NULL WHERE id = ?');
    set.run(child.pid, alive);
    const gone = spawn('true');
    await new Promise((r) => gone.once('exit', r));
    set.run(gone.pid, dead);

    expect(s.deploys.reapOrphans('prod')).toBe(1);
    const rows = s.deploys.list('prod', undefined, 10);
    expect(rows.find((d) => d.id === alive)?.status).toBe('running');
    expect(rows.find((d) => d.id === dead)?.status).toBe('interrupted');
  });
});
