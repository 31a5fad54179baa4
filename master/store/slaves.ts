/** Slave state rows (table slave_state) and the recent check history. */
import type { Db } from './db';
import { nowIso, stmt } from './db';
import type { Drift, SlaveState } from '../../core/fleet-state';
import type { BadStateAlert } from '../checker/state-machine';

export interface SlaveRecord {
  stack: string;
  name: string;
  state: SlaveState;
  drift: Drift;
  commit: string | null;
  branch: string | null;
  strategy: string | null;
  /** The agent's supervisor (system-unit, user-unit, cron, setsid, container), null until it reports one. */
  supervisor: string | null;
  /** Whether that supervisor survives a reboot; null until known. */
  reboot_safe: boolean | null;
  last_seen: string | null;
  last_check: string | null;
  failures: number;
  last_error: string | null;
  last_error_reachable: boolean;
  breaker: string;
  alert_kind: BadStateAlert | null;
  alert_at: string | null;
  alert_key: string | null;
  recovery_attempts: number;
  next_recovery_at: string | null;
  escalated: boolean;
  update_attempts: number;
  next_update_at: string | null;
  update_target: string | null;
  update_request_id: string | null;
  updated_at: string;
}

const COLUMNS: Record<keyof SlaveRecord, string> = {
  stack: 'stack', name: 'name', state: 'state', drift: 'drift', commit: 'commit_sha', branch: 'branch', strategy: 'strategy',
  supervisor: 'supervisor', reboot_safe: 'reboot_safe', last_seen: 'last_seen', last_check: 'last_check', failures: 'failures', last_error: 'last_error',
  last_error_reachable: 'last_error_reachable', breaker: 'breaker', alert_kind: 'alert_kind', alert_at: 'alert_at',
  alert_key: 'alert_key', recovery_attempts: 'recovery_attempts', next_recovery_at: 'next_recovery_at', escalated: 'escalated',
  update_attempts: 'update_attempts', next_update_at: 'next_update_at', update_target: 'update_target',
  update_request_id: 'update_request_id', updated_at: 'updated_at',
};

type Row = Record<string, unknown>;

function fromRow(r: Row): SlaveRecord {
  const out: Record<string, unknown> = {};
  for (const [k, col] of Object.entries(COLUMNS)) out[k] = r[col];
  out.last_error_reachable = !!r.last_error_reachable;
  out.escalated = !!r.escalated;
  out.reboot_safe = r.reboot_safe === null || r.reboot_safe === undefined ? null : !!r.reboot_safe;
  return out as unknown as SlaveRecord;
}

export function emptyRecord(stack: string, name: string): SlaveRecord {
  return {
    stack, name, state: 'unknown', drift: 'unknown', commit: null, branch: null, strategy: null, supervisor: null, reboot_safe: null, last_seen: null, last_check: null,
    failures: 0, last_error: null, last_error_reachable: false, breaker: 'closed', alert_kind: null, alert_at: null, alert_key: null,
    recovery_attempts: 0, next_recovery_at: null, escalated: false, update_attempts: 0, next_update_at: null,
    update_target: null, update_request_id: null, updated_at: nowIso(),
  };
}

export class SlaveStore {
  constructor(private readonly db: Db) {}

  get(stack: string, name: string): SlaveRecord | null {
    const r = stmt(this.db, 'SELECT * FROM slave_state WHERE stack = ? AND name = ?').get(stack, name) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  getOrEmpty(stack: string, name: string): SlaveRecord {
    return this.get(stack, name) ?? emptyRecord(stack, name);
  }

  list(stack: string): SlaveRecord[] {
    return (stmt(this.db, 'SELECT * FROM slave_state WHERE stack = ? ORDER BY name').all(stack) as Row[]).map(fromRow);
  }

  put(rec: SlaveRecord): void {
    const keys = Object.keys(COLUMNS) as Array<keyof SlaveRecord>;
    const cols = keys.map((k) => COLUMNS[k]);
    const values = keys.map((k) => {
      const v = k === 'updated_at' ? nowIso() : rec[k];
      return typeof v === 'boolean' ? (v ? 1 : 0) : v;
    });
    stmt(this.db, `INSERT OR REPLACE INTO slave_state (${cols.join(',')}) VALUES (${cols.map(() => '?').join(',')})`).run(...values);
  }

  /** Partial update of one slave's row (creating it when missing). */
  patch(stack: string, name: string, changes: Partial<SlaveRecord>): SlaveRecord {
    return this.db.transaction(() => {
      const rec = { ...this.getOrEmpty(stack, name), ...changes };
      this.put(rec);
      return rec;
    }).immediate();
  }

  private readonly sincePrune = new Map<string, number>();

  addCheck(stack: string, slave: string, c: { ok: boolean; latencyMs: number; commit: string | null; error: string | null }, keep = 200): void {
    stmt(this.db, 'INSERT INTO check_history (stack, slave, at, ok, latency_ms, commit_sha, error) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(stack, slave, nowIso(), c.ok ? 1 : 0, c.latencyMs, c.commit, c.error);
    // Pruning every 20th insert keeps the history between `keep` and `keep + 20` rows at a twentieth of the cost.
    const key = `${stack}\0${slave}`;
    const n = (this.sincePrune.get(key) ?? 0) + 1;
    this.sincePrune.set(key, n % 20);
    if (n < 20) return;
    stmt(this.db, `DELETE FROM check_history WHERE stack = ? AND slave = ? AND id <= (
      SELECT id FROM check_history WHERE stack = ? AND slave = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`).run(stack, slave, stack, slave, keep);
  }

  history(stack: string, slave: string, limit = 20): Array<{ at: string; ok: boolean; latency_ms: number | null; commit: string | null; error: string | null }> {
    const rows = stmt(this.db, 'SELECT at, ok, latency_ms, commit_sha, error FROM check_history WHERE stack = ? AND slave = ? ORDER BY id DESC LIMIT ?')
      .all(stack, slave, limit) as Array<{ at: string; ok: number; latency_ms: number | null; commit_sha: string | null; error: string | null }>;
    return rows.map((r) => ({ at: r.at, ok: !!r.ok, latency_ms: r.latency_ms, commit: r.commit_sha, error: r.error }));
  }
}
