/**
 * The master's state store: one SQLite file in D8_HOME, opened by the daemon and by CLI commands at
 * the same time. WAL lets readers run while the daemon writes; busy_timeout makes a second writer
 * wait instead of failing; every multi-row change is one transaction, so a crash mid-write leaves
 * the previous committed state.
 */
import path from 'path';
import fs from 'fs';
import Database from 'better-sqlite3';
import { d8Home, ensurePrivateDir } from '../../core/paths';

export type Db = Database.Database;

export const STORE_FILE_NAME = 'master.db';

export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE slave_state (
     stack TEXT NOT NULL,
     name TEXT NOT NULL,
     state TEXT NOT NULL DEFAULT 'unknown',
     drift TEXT NOT NULL DEFAULT 'unknown',
     commit_sha TEXT,
     branch TEXT,
     strategy TEXT,
     last_seen TEXT,
     last_check TEXT,
     failures INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     last_error_reachable INTEGER NOT NULL DEFAULT 0,
     breaker TEXT NOT NULL DEFAULT 'closed',
     alert_kind TEXT,
     alert_at TEXT,
     alert_key TEXT,
     recovery_attempts INTEGER NOT NULL DEFAULT 0,
     next_recovery_at TEXT,
     escalated INTEGER NOT NULL DEFAULT 0,
     update_attempts INTEGER NOT NULL DEFAULT 0,
     next_update_at TEXT,
     update_target TEXT,
     update_request_id TEXT,
     updated_at TEXT NOT NULL,
     PRIMARY KEY (stack, name)
   )`,
  `CREATE TABLE check_history (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     stack TEXT NOT NULL,
     slave TEXT NOT NULL,
     at TEXT NOT NULL,
     ok INTEGER NOT NULL,
     latency_ms INTEGER,
     commit_sha TEXT,
     error TEXT
   )`,
  `CREATE INDEX check_history_slave ON check_history (stack, slave, id)`,
  `CREATE TABLE alerts_outbox (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     created_at TEXT NOT NULL,
     kind TEXT NOT NULL,
     slave TEXT,
     payload TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at TEXT NOT NULL,
     last_error TEXT,
     lease_owner TEXT,
     lease_until TEXT
   )`,
  `CREATE TABLE alerts_sent (
     id INTEGER PRIMARY KEY,
     created_at TEXT NOT NULL,
     sent_at TEXT NOT NULL,
     kind TEXT NOT NULL,
     slave TEXT,
     notifier TEXT NOT NULL,
     payload TEXT NOT NULL
   )`,
  `CREATE TABLE human_requests (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     type TEXT NOT NULL,
     status TEXT NOT NULL,
     title TEXT NOT NULL,
     description TEXT NOT NULL,
     priority TEXT NOT NULL,
     estimated_cost REAL,
     created_by TEXT NOT NULL,
     notes TEXT,
     action TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     resolved_at TEXT
   )`,
  `CREATE TABLE deploy_history (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     stack TEXT NOT NULL,
     slave TEXT NOT NULL,
     engine TEXT NOT NULL,
     reason TEXT NOT NULL,
     status TEXT NOT NULL,
     pid INTEGER NOT NULL,
     started_at TEXT NOT NULL,
     finished_at TEXT,
     commit_sha TEXT,
     strategy TEXT,
     build_log_path TEXT,
     error TEXT
   )`,
  `CREATE TABLE control_commands (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     stack TEXT NOT NULL,
     kind TEXT NOT NULL,
     slave TEXT NOT NULL,
     status TEXT NOT NULL,
     created_at TEXT NOT NULL,
     finished_at TEXT,
     result TEXT
   )`,
  `CREATE TABLE master_info (
     stack TEXT PRIMARY KEY,
     commit_sha TEXT NOT NULL,
     branch TEXT NOT NULL,
     pid INTEGER NOT NULL,
     engine TEXT,
     started_at TEXT NOT NULL,
     heartbeat_at TEXT NOT NULL,
     stopped_at TEXT
   )`,
  // What keeps each agent running (its /api/health `supervisor`, `reboot_safe`).
  `ALTER TABLE slave_state ADD COLUMN supervisor TEXT`,
  `ALTER TABLE slave_state ADD COLUMN reboot_safe INTEGER`,
  // Issue 12: one deploy per slave across processes (the CLI and the daemon); see deploy-locks.ts.
  `CREATE TABLE deploy_locks (
     stack TEXT NOT NULL,
     slave TEXT NOT NULL,
     pid INTEGER NOT NULL,
     proc_start TEXT,
     holder TEXT NOT NULL,
     reason TEXT NOT NULL,
     acquired_at TEXT NOT NULL,
     PRIMARY KEY (stack, slave)
   )`,
  // Issue 16: API tokens (hashed), approval time and rule of a request, budget alerts and daily summaries sent.
  `ALTER TABLE human_requests ADD COLUMN approved_at TEXT;
   ALTER TABLE human_requests ADD COLUMN auto_rule TEXT;
   UPDATE human_requests SET approved_at = updated_at WHERE status IN ('APPROVED', 'COMPLETED');
   CREATE TABLE api_tokens (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     scopes TEXT NOT NULL,
     hash TEXT NOT NULL,
     created_at TEXT NOT NULL,
     last_used_at TEXT,
     revoked_at TEXT
   );
   CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
   CREATE TABLE budget_alerts (
     month TEXT NOT NULL,
     type TEXT NOT NULL,
     threshold INTEGER NOT NULL,
     at TEXT NOT NULL,
     PRIMARY KEY (month, type, threshold)
   );
   CREATE TABLE daily_summaries (
     day TEXT PRIMARY KEY,
     sent_at TEXT NOT NULL
   )`,
  // issue 14: releases kept in D8_HOME, the last good one per slave, and rollouts with their stage.
  `CREATE TABLE releases (
     stack TEXT NOT NULL,
     commit_sha TEXT NOT NULL,
     bundle_hash TEXT NOT NULL,
     dir TEXT NOT NULL,
     created_at TEXT NOT NULL,
     last_deployed_at TEXT NOT NULL,
     PRIMARY KEY (stack, commit_sha)
   );
   CREATE TABLE release_slaves (
     stack TEXT NOT NULL,
     slave TEXT NOT NULL,
     running_commit TEXT,
     good_commit TEXT,
     good_at TEXT,
     PRIMARY KEY (stack, slave)
   );
   CREATE TABLE rollouts (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     stack TEXT NOT NULL,
     commit_sha TEXT NOT NULL,
     status TEXT NOT NULL,
     stage INTEGER NOT NULL DEFAULT 0,
     policy TEXT NOT NULL,
     failures INTEGER NOT NULL DEFAULT 0,
     request_id TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE INDEX rollouts_stack ON rollouts (stack, id);
   CREATE TABLE rollout_members (
     rollout_id INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
     slave TEXT NOT NULL,
     stage INTEGER NOT NULL,
     status TEXT NOT NULL,
     from_commit TEXT,
     gate_since TEXT,
     error TEXT,
     PRIMARY KEY (rollout_id, slave)
   )`,
  // issue 14 (pulumi path, per-slave policy): a member's own health gate, from d8:slaves[i].rollout.
  `ALTER TABLE rollout_members ADD COLUMN healthy_for_seconds REAL`,
  // issue 13: the SHA-256 fingerprint of each agent's certificate, from its install result (over SSH).
  `CREATE TABLE agent_pins (
     stack TEXT NOT NULL,
     slave TEXT NOT NULL,
     fingerprint TEXT NOT NULL,
     recorded_at TEXT NOT NULL,
     PRIMARY KEY (stack, slave)
   )`,
  // issue 23: the deploying process's start time, so a pid reused after a reboot does not keep its row running.
  `ALTER TABLE deploy_history ADD COLUMN proc_start TEXT`,
  // issue 23: approved requests with an action have their own query (the supervisor's); lists by status go newest first.
  `CREATE INDEX human_requests_actionable ON human_requests (seq) WHERE status = 'APPROVED' AND action IS NOT NULL;
   CREATE INDEX human_requests_status ON human_requests (status, seq)`,
  // issue 23: decided requests are pruned (retention), so each month's approved spend is kept apart,
  // by triggers: a row adds what it counts (APPROVED or COMPLETED with approved_at) and an update
  // takes back what the old row counted. A deleted row keeps its spend.
  `CREATE TABLE spend_months (
     month TEXT NOT NULL,
     type TEXT NOT NULL,
     spent REAL NOT NULL,
     approved INTEGER NOT NULL,
     PRIMARY KEY (month, type)
   );
   INSERT INTO spend_months (month, type, spent, approved)
     SELECT substr(approved_at, 1, 7), type, COALESCE(SUM(estimated_cost), 0), COUNT(*) FROM human_requests
     WHERE status IN ('APPROVED', 'COMPLETED') AND approved_at IS NOT NULL GROUP BY 1, 2;
   CREATE TRIGGER spend_counts_insert AFTER INSERT ON human_requests
     WHEN NEW.status IN ('APPROVED', 'COMPLETED') AND NEW.approved_at IS NOT NULL
   BEGIN
     INSERT INTO spend_months (month, type, spent, approved) VALUES (substr(NEW.approved_at, 1, 7), NEW.type, COALESCE(NEW.estimated_cost, 0), 1)
       ON CONFLICT (month, type) DO UPDATE SET spent = spent + excluded.spent, approved = approved + 1;
   END;
   CREATE TRIGGER spend_uncounts_update AFTER UPDATE ON human_requests
     WHEN OLD.status IN ('APPROVED', 'COMPLETED') AND OLD.approved_at IS NOT NULL
   BEGIN
     UPDATE spend_months SET spent = spent - COALESCE(OLD.estimated_cost, 0), approved = approved - 1
       WHERE month = substr(OLD.approved_at, 1, 7) AND type = OLD.type;
   END;
   CREATE TRIGGER spend_counts_update AFTER UPDATE ON human_requests
     WHEN NEW.status IN ('APPROVED', 'COMPLETED') AND NEW.approved_at IS NOT NULL
   BEGIN
     INSERT INTO spend_months (month, type, spent, approved) VALUES (substr(NEW.approved_at, 1, 7), NEW.type, COALESCE(NEW.estimated_cost, 0), 1)
       ON CONFLICT (month, type) DO UPDATE SET spent = spent + excluded.spent, approved = approved + 1;
   END`,
  // issue 25: each slave's channel as the daemon last saw it (one row per slave).
  `CREATE TABLE agent_channels (
     stack TEXT NOT NULL,
     slave TEXT NOT NULL,
     connected INTEGER NOT NULL,
     since TEXT,
     last_heartbeat_at TEXT,
     reconnects INTEGER NOT NULL,
     last_error TEXT,
     updated_at TEXT NOT NULL,
     PRIMARY KEY (stack, slave)
   )`,
];

export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreError';
  }
}

export function storePath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(d8Home(env), STORE_FILE_NAME);
}

/** Opens (creating and migrating when needed) the store at `file`. */
export function openDb(file: string = storePath()): Db {
  ensurePrivateDir(path.dirname(file));
  let db: Db;
  try {
    db = new Database(file);
  } catch (err) {
    throw new StoreError(`cannot open the state store ${file}: ${(err as Error).message} (check D8_HOME and its permissions)`);
  }
  try { fs.chmodSync(file, 0o600); } catch { /* not ours to fix: a read-only store still opens */ }
  db.pragma('busy_timeout = 10000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  // BEGIN IMMEDIATE takes the write lock first, so two processes opening a fresh store at once
  // cannot both run the migrations.
  const run = db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    for (let i = version; i < MIGRATIONS.length; i++) db.exec(MIGRATIONS[i]);
    if (version < MIGRATIONS.length) db.pragma(`user_version = ${MIGRATIONS.length}`);
  });
  run.immediate();
}

export const nowIso = (now: number = Date.now()): string => new Date(now).toISOString();

const statements = new WeakMap<Db, Map<string, Database.Statement>>();

/** A prepared statement, compiled once per connection (preparing costs more than running a small one). */
export function stmt(db: Db, sql: string): Database.Statement {
  let m = statements.get(db);
  if (!m) statements.set(db, (m = new Map()));
  let s = m.get(sql);
  if (!s) m.set(sql, (s = db.prepare(sql)));
  return s;
}
