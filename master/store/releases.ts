/**
 * Releases the master deployed (table releases: one bundle directory in D8_HOME per commit) and, per
 * slave, the release it runs and the last one it was healthy at (table release_slaves).
 */
import type { Db } from './db';
import { nowIso, stmt } from './db';

export interface ReleaseRow { stack: string; commit: string; bundle_hash: string; dir: string; created_at: string; last_deployed_at: string }
export interface SlaveReleaseRow { stack: string; slave: string; running_commit: string | null; good_commit: string | null; good_at: string | null }

const fromRow = (r: Record<string, unknown>): ReleaseRow => ({
  stack: r.stack as string, commit: r.commit_sha as string, bundle_hash: r.bundle_hash as string, dir: r.dir as string,
  created_at: r.created_at as string, last_deployed_at: r.last_deployed_at as string,
});

export class ReleaseStore {
  constructor(private readonly db: Db) {}

  /** Records (or refreshes) the release of `commit`, kept in `dir`. */
  put(stack: string, commit: string, bundleHash: string, dir: string): void {
    const now = nowIso();
    stmt(this.db, `INSERT INTO releases (stack, commit_sha, bundle_hash, dir, created_at, last_deployed_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (stack, commit_sha) DO UPDATE SET bundle_hash = excluded.bundle_hash, dir = excluded.dir, last_deployed_at = excluded.last_deployed_at`)
      .run(stack, commit, bundleHash, dir, now, now);
  }

  get(stack: string, commit: string): ReleaseRow | null {
    const r = stmt(this.db, 'SELECT * FROM releases WHERE stack = ? AND commit_sha = ?').get(stack, commit) as Record<string, unknown> | undefined;
    return r ? fromRow(r) : null;
  }

  /** Newest deploy first. */
  list(stack: string): ReleaseRow[] {
    return (stmt(this.db, 'SELECT * FROM releases WHERE stack = ? ORDER BY last_deployed_at DESC, rowid DESC').all(stack) as Array<Record<string, unknown>>).map(fromRow);
  }

  remove(stack: string, commit: string): void {
    stmt(this.db, 'DELETE FROM releases WHERE stack = ? AND commit_sha = ?').run(stack, commit);
  }

  /** The slave now runs `commit` (a deploy of that release ended well). */
  setRunning(stack: string, slave: string, commit: string): void {
    stmt(this.db, `INSERT INTO release_slaves (stack, slave, running_commit) VALUES (?, ?, ?)
      ON CONFLICT (stack, slave) DO UPDATE SET running_commit = excluded.running_commit`).run(stack, slave, commit);
  }

  /** The slave was healthy at `commit`: its last good release (when the master keeps that release). */
  markGood(stack: string, slave: string, commit: string): void {
    stmt(this.db, `INSERT INTO release_slaves (stack, slave, running_commit, good_commit, good_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (stack, slave) DO UPDATE SET running_commit = excluded.running_commit, good_commit = excluded.good_commit, good_at = excluded.good_at`)
      .run(stack, slave, commit, commit, nowIso());
  }

  slaves(stack: string): SlaveReleaseRow[] {
    return stmt(this.db, 'SELECT * FROM release_slaves WHERE stack = ? ORDER BY slave').all(stack) as SlaveReleaseRow[];
  }

  slave(stack: string, slave: string): SlaveReleaseRow | null {
    return (stmt(this.db, 'SELECT * FROM release_slaves WHERE stack = ? AND slave = ?').get(stack, slave) as SlaveReleaseRow | undefined) ?? null;
  }
}
