/** Rollouts (tables rollouts, rollout_members): the stage each reached, so a restarted master resumes it. */
import type { Db } from './db';
import { nowIso, stmt } from './db';
import { RolloutPolicySchema, type MemberStatus, type Rollout, type RolloutMember, type RolloutPolicy, type RolloutStatus } from '../../core/rollout';

export class RolloutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RolloutError';
  }
}

type Row = Record<string, unknown>;

export class RolloutStore {
  constructor(private readonly db: Db) {}

  private members(id: number): RolloutMember[] {
    return stmt(this.db, 'SELECT slave, stage, status, from_commit, gate_since, error, healthy_for_seconds FROM rollout_members WHERE rollout_id = ? ORDER BY stage, rowid').all(id) as RolloutMember[];
  }

  private fromRow(r: Row): Rollout {
    return {
      id: r.id as number, stack: r.stack as string, commit: r.commit_sha as string, status: r.status as RolloutStatus, stage: r.stage as number,
      policy: RolloutPolicySchema.parse(JSON.parse(r.policy as string)), failures: r.failures as number, request_id: (r.request_id as string | null) ?? null,
      created_at: r.created_at as string, updated_at: r.updated_at as string, members: this.members(r.id as number),
    };
  }

  /** A new rollout of `commit` with its planned members (stage 0 = canary). */
  create(stack: string, commit: string, policy: RolloutPolicy, plan: Array<{ slave: string; stage: number; from_commit: string | null; healthy_for_seconds?: number | null }>): Rollout {
    const now = nowIso();
    const id = this.db.transaction(() => {
      const rid = Number(stmt(this.db, "INSERT INTO rollouts (stack, commit_sha, status, stage, policy, created_at, updated_at) VALUES (?, ?, 'running', 0, ?, ?, ?)")
        .run(stack, commit, JSON.stringify(policy), now, now).lastInsertRowid);
      for (const m of plan) {
        stmt(this.db, "INSERT INTO rollout_members (rollout_id, slave, stage, status, from_commit, healthy_for_seconds) VALUES (?, ?, ?, 'pending', ?, ?)")
          .run(rid, m.slave, m.stage, m.from_commit, m.healthy_for_seconds ?? null);
      }
      return rid;
    }).immediate();
    return this.get(id)!;
  }

  get(id: number): Rollout | null {
    const r = stmt(this.db, 'SELECT * FROM rollouts WHERE id = ?').get(id) as Row | undefined;
    return r ? this.fromRow(r) : null;
  }

  /** The newest rollout of the stack, whatever its status. */
  latest(stack: string): Rollout | null {
    const r = stmt(this.db, 'SELECT * FROM rollouts WHERE stack = ? ORDER BY id DESC LIMIT 1').get(stack) as Row | undefined;
    return r ? this.fromRow(r) : null;
  }

  /** The newest rollout of `commit`. */
  forCommit(stack: string, commit: string): Rollout | null {
    const r = stmt(this.db, 'SELECT * FROM rollouts WHERE stack = ? AND commit_sha = ? ORDER BY id DESC LIMIT 1').get(stack, commit) as Row | undefined;
    return r ? this.fromRow(r) : null;
  }

  list(stack: string, limit = 20): Rollout[] {
    return (stmt(this.db, 'SELECT * FROM rollouts WHERE stack = ? ORDER BY id DESC LIMIT ?').all(stack, limit) as Row[]).map((r) => this.fromRow(r));
  }

  setStatus(id: number, status: RolloutStatus, patch: { stage?: number; failures?: number; request_id?: string | null } = {}): void {
    const cur = this.get(id);
    if (!cur) throw new RolloutError(`rollout ${id} does not exist`);
    stmt(this.db, 'UPDATE rollouts SET status = ?, stage = ?, failures = ?, request_id = ?, updated_at = ? WHERE id = ?')
      .run(status, patch.stage ?? cur.stage, patch.failures ?? cur.failures, patch.request_id === undefined ? cur.request_id : patch.request_id, nowIso(), id);
  }

  /** Moves a status only from one of `from` (a person's pause/resume/abort racing the daemon). Returns whether it moved. */
  transition(id: number, from: RolloutStatus[], to: RolloutStatus): boolean {
    const r = this.db.prepare(`UPDATE rollouts SET status = ?, updated_at = ? WHERE id = ? AND status IN (${from.map(() => '?').join(', ')})`)
      .run(to, nowIso(), id, ...from);
    return r.changes > 0;
  }

  setMember(id: number, slave: string, status: MemberStatus, patch: { gate_since?: string | null; error?: string | null } = {}): void {
    stmt(this.db, 'UPDATE rollout_members SET status = ?, gate_since = COALESCE(?, gate_since), error = ? WHERE rollout_id = ? AND slave = ?')
      .run(status, patch.gate_since ?? null, patch.error ?? null, id, slave);
    stmt(this.db, 'UPDATE rollouts SET updated_at = ? WHERE id = ?').run(nowIso(), id);
  }
}
