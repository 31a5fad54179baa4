/** The running daemon's identity per stack (table master_info): commit, pid, heartbeat. */
import type { Db } from './db';
import { nowIso, stmt } from './db';

export interface MasterInfo {
  stack: string;
  commit: string;
  branch: string;
  pid: number;
  engine: string | null;
  started_at: string;
  heartbeat_at: string;
  stopped_at: string | null;
}

export class MasterInfoStore {
  constructor(private readonly db: Db) {}

  get(stack: string): MasterInfo | null {
    const r = stmt(this.db, 'SELECT stack, commit_sha AS "commit", branch, pid, engine, started_at, heartbeat_at, stopped_at FROM master_info WHERE stack = ?')
      .get(stack) as MasterInfo | undefined;
    return r ?? null;
  }

  started(stack: string, commit: string, branch: string, engine: string): void {
    const now = nowIso();
    stmt(this.db, `INSERT OR REPLACE INTO master_info (stack, commit_sha, branch, pid, engine, started_at, heartbeat_at, stopped_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, NULL)`).run(stack, commit, branch, process.pid, engine, now, now);
  }

  heartbeat(stack: string, commit: string, branch: string): void {
    stmt(this.db, 'UPDATE master_info SET heartbeat_at = ?, commit_sha = ?, branch = ? WHERE stack = ? AND pid = ?')
      .run(nowIso(), commit, branch, stack, process.pid);
  }

  stopped(stack: string): void {
    stmt(this.db, 'UPDATE master_info SET stopped_at = ? WHERE stack = ? AND pid = ?').run(nowIso(), stack, process.pid);
  }

  /** Whether a daemon for `stack` is running now: not stopped, its pid alive, a recent heartbeat. */
  isRunning(stack: string, maxSilenceMs: number): boolean {
    const info = this.get(stack);
    if (!info || info.stopped_at) return false;
    if (!pidAlive(info.pid)) return false;
    return Date.now() - Date.parse(info.heartbeat_at) <= maxSilenceMs;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
