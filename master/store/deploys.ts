/** Deploy history (table deploy_history): one row per deploy, `running` until it ends. */
import type { Db } from './db';
import { nowIso, stmt } from './db';
import type { DeployResult } from '../../core/deploy-result';
import { AgentPinStore } from './agent-pins';
import { holderAlive, processStartTime } from './deploy-locks';

export type DeployStatus = 'running' | 'ok' | 'failed' | 'interrupted';

export interface DeployRow {
  id: number; stack: string; slave: string; engine: string; reason: string; status: DeployStatus; pid: number;
  started_at: string; finished_at: string | null; commit: string | null; strategy: string | null;
  build_log_path: string | null; error: string | null;
}

export class DeployHistory {
  private readonly selfStart: string | null = processStartTime(process.pid);

  constructor(private readonly db: Db) {}

  start(stack: string, slave: string, engine: string, reason: string, now: number = Date.now()): number {
    return Number(stmt(this.db, "INSERT INTO deploy_history (stack, slave, engine, reason, status, pid, proc_start, started_at) VALUES (?, ?, ?, ?, 'running', ?, ?, ?)")
      .run(stack, slave, engine, reason, process.pid, this.selfStart, nowIso(now)).lastInsertRowid);
  }

  /**
   * Ends a deploy's row. A deploy that reports its agent's certificate (or that the agent now speaks
   * plain HTTP) also moves the slave's pin, in the same transaction: every path that records a
   * deploy records the pin with it.
   */
  finish(id: number, r: DeployResult, okOverride?: { ok: boolean; error: string | null }, now: number = Date.now()): void {
    const ok = okOverride ? okOverride.ok : r.ok;
    const error = okOverride ? okOverride.error : r.error;
    this.db.transaction(() => {
      stmt(this.db, 'UPDATE deploy_history SET status = ?, finished_at = ?, commit_sha = ?, strategy = ?, build_log_path = ?, error = ? WHERE id = ?')
        .run(ok ? 'ok' : 'failed', nowIso(now), r.commit, r.strategy, r.buildLogPath, error, id);
      if (r.tlsFingerprint !== undefined) {
        const row = stmt(this.db, 'SELECT stack, slave FROM deploy_history WHERE id = ?').get(id) as { stack: string; slave: string } | undefined;
        if (row) new AgentPinStore(this.db).set(row.stack, row.slave, r.tlsFingerprint);
      }
    })();
  }

  fail(id: number, error: string, now: number = Date.now()): void {
    stmt(this.db, "UPDATE deploy_history SET status = 'failed', finished_at = ?, error = ? WHERE id = ?").run(nowIso(now), error, id);
  }

  markInterrupted(id: number, why: string): void {
    stmt(this.db, "UPDATE deploy_history SET status = 'interrupted', finished_at = ?, error = ? WHERE id = ? AND status = 'running'").run(nowIso(), why, id);
  }

  /**
   * Rows left `running` by a process that is gone (a crash, a reboot): marked interrupted. Returns how
   * many. A pid alive again after a reboot belongs to another process: its start time differs.
   */
  reapOrphans(stack: string): number {
    const rows = stmt(this.db, "SELECT id, pid, proc_start FROM deploy_history WHERE stack = ? AND status = 'running'").all(stack) as Array<{ id: number; pid: number; proc_start: string | null }>;
    let n = 0;
    for (const r of rows) {
      if (holderAlive(r)) continue;
      this.markInterrupted(r.id, 'the master stopped during this deploy');
      n++;
    }
    return n;
  }

  list(stack: string, slave?: string, limit = 50): DeployRow[] {
    const rows = (slave
      ? stmt(this.db, 'SELECT * FROM deploy_history WHERE stack = ? AND slave = ? ORDER BY id DESC LIMIT ?').all(stack, slave, limit)
      : stmt(this.db, 'SELECT * FROM deploy_history WHERE stack = ? ORDER BY id DESC LIMIT ?').all(stack, limit)) as Array<Record<string, unknown>>;
    return rows.map((r) => ({ ...(r as unknown as DeployRow), commit: r.commit_sha as string | null }));
  }
}
