/**
 * Deploy locks (table deploy_locks): at most one deploy per slave at a time across every process
 * sharing D8_HOME (`d8 up`, `d8 retry`/`update`, the daemon). A lock names its holder (process,
 * pid, since when, why). A holder that died without releasing — SIGKILL, a crash, a reboot — is
 * stale: its pid is gone, or the pid now belongs to another process (the start time differs), and
 * the next taker replaces it. Taking and replacing happen in one IMMEDIATE transaction.
 */
import fs from 'fs';
import type { Db } from './db';
import { nowIso, stmt } from './db';
import { pidAlive } from './master-info';

export interface DeployLockHolder {
  stack: string;
  slave: string;
  pid: number;
  /** The holder's start time in clock ticks since boot (/proc/PID/stat), to tell a reused pid apart. */
  proc_start: string | null;
  /** What holds it, e.g. `d8 up`. */
  holder: string;
  reason: string;
  acquired_at: string;
}

export type TakeResult = { taken: true; replacedStale: DeployLockHolder | null } | { taken: false; holder: DeployLockHolder };

/** The fields of /proc/PID/stat after the command name (field 3, the state, first), or null where there is none. */
export function procStatFields(pid: number): string[] | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: fields after it follow the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Field 22 of /proc/PID/stat (start time), or null where there is no /proc. */
export function processStartTime(pid: number): string | null {
  return procStatFields(pid)?.[19] ?? null;
}

/** Is the process that took this lock still running? */
export function holderAlive(h: Pick<DeployLockHolder, 'pid' | 'proc_start'>): boolean {
  if (!pidAlive(h.pid)) return false;
  if (h.proc_start === null) return true;
  const now = processStartTime(h.pid);
  return now === null || now === h.proc_start;
}

export class DeployLocks {
  private readonly selfStart: string | null = processStartTime(process.pid);

  constructor(private readonly db: Db) {}

  get(stack: string, slave: string): DeployLockHolder | null {
    return (stmt(this.db, 'SELECT * FROM deploy_locks WHERE stack = ? AND slave = ?').get(stack, slave) as DeployLockHolder | undefined) ?? null;
  }

  /** Takes the lock when it is free or its holder is gone; otherwise says who holds it. */
  tryTake(stack: string, slave: string, holder: string, reason: string): TakeResult {
    const take = this.db.transaction((): TakeResult => {
      const cur = this.get(stack, slave);
      if (cur && holderAlive(cur)) return { taken: false, holder: cur };
      stmt(this.db, `INSERT OR REPLACE INTO deploy_locks (stack, slave, pid, proc_start, holder, reason, acquired_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)`).run(stack, slave, process.pid, this.selfStart, holder, reason, nowIso());
      return { taken: true, replacedStale: cur };
    });
    return take.immediate();
  }

  /** Releases the lock if this process holds it (a stale holder's replacement keeps its own). */
  release(stack: string, slave: string): void {
    stmt(this.db, 'DELETE FROM deploy_locks WHERE stack = ? AND slave = ? AND pid = ?').run(stack, slave, process.pid);
  }
}
