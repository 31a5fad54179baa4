/**
 * Retention of what grows with every deploy, command, request and alert (issue 23): finished
 * deploy_history rows with their build log files, and done control_commands. Per slave, the newest
 * `perSlave` rows stay, and of those only the ones younger than `days` — except the slave's newest, so
 * its last deploy stays visible however old. A build log file no row names goes once it is older than
 * `days` (a deploy that crashed before its row was finished). Running deploys and queued or running
 * commands are never touched. Decided human requests: the newest `requests`, younger than
 * `requestDays` (their spend stays in spend_months); pending, postponed and approved ones whose action
 * has not run stay. Delivered alerts: the newest `alerts`.
 */
import fs from 'fs';
import path from 'path';
import type { Logger } from '../../core/logger';
import { RetentionConfigSchema, type RetentionConfigInput } from '../../core/stack-config';
import type { Db } from './db';
import { nowIso, stmt } from './db';

export interface PruneResult {
  deploys: number;
  commands: number;
  buildLogs: number;
  requests: number;
  alerts: number;
}

/** A request nobody has to act on any more: what the pruning may remove, newest first by seq. */
const DECIDED = "(status IN ('REJECTED', 'COMPLETED') OR (status = 'APPROVED' AND action IS NULL))";

const DAY_MS = 86_400_000;

/** Ids of the rows of `table` (already filtered to prunable ones by `where`) outside the policy. */
function outsideWindow(table: 'deploy_history' | 'control_commands', at: string, where: string): string {
  return `SELECT id FROM (
      SELECT id, ${at} AS at, ROW_NUMBER() OVER (PARTITION BY slave ORDER BY id DESC) AS rn
      FROM ${table} WHERE stack = @stack AND ${where})
    WHERE rn > @keep OR (rn > 1 AND at < @cutoff)`;
}

/**
 * Prunes `stack`'s deploy history and control commands, and the build logs in `buildLogDir`, as of
 * `now`. Only files directly inside `buildLogDir` are ever removed, whatever a row says.
 */
export function pruneHistory(db: Db, o: { stack: string; policy?: RetentionConfigInput; buildLogDir: string; now: number }): PruneResult {
  const policy = RetentionConfigSchema.parse(o.policy ?? {});
  const cutoffMs = o.now - policy.days * DAY_MS;
  const params = { stack: o.stack, keep: policy.perSlave, cutoff: nowIso(cutoffMs) };
  const dir = path.resolve(o.buildLogDir);

  const { files, deploys, commands, requests, alerts } = db.transaction(() => {
    const gone = stmt(db, `DELETE FROM deploy_history WHERE id IN (${outsideWindow('deploy_history', 'started_at', "status != 'running'")})
      RETURNING build_log_path`).all(params) as Array<{ build_log_path: string | null }>;
    const cmds = stmt(db, `DELETE FROM control_commands WHERE id IN (${outsideWindow('control_commands', 'created_at', "status = 'done'")})`).run(params).changes;
    const requests = stmt(db, `DELETE FROM human_requests WHERE seq IN (SELECT seq FROM (
        SELECT seq, updated_at, ROW_NUMBER() OVER (ORDER BY seq DESC) AS rn FROM human_requests WHERE ${DECIDED})
      WHERE rn > @keep OR updated_at < @cutoff)`).run({ keep: policy.requests, cutoff: nowIso(o.now - policy.requestDays * DAY_MS) }).changes;
    const alerts = stmt(db, 'DELETE FROM alerts_sent WHERE id <= (SELECT MAX(id) FROM alerts_sent) - @keep').run({ keep: policy.alerts }).changes;
    return { files: gone.map((r) => r.build_log_path).filter((p): p is string => p !== null), deploys: gone.length, commands: cmds, requests, alerts };
  }).immediate();

  let buildLogs = 0;
  const inDir = (p: string): boolean => path.dirname(path.resolve(p)) === dir;
  for (const f of files) if (inDir(f) && unlink(f)) buildLogs++;

  // Files no row of any stack names (rows of other stacks sharing this D8_HOME keep theirs).
  const named = new Set((stmt(db, 'SELECT build_log_path AS p FROM deploy_history WHERE build_log_path IS NOT NULL').all() as Array<{ p: string }>)
    .map((r) => path.resolve(r.p)));
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const name of entries) {
    const f = path.join(dir, name);
    if (named.has(f)) continue;
    let st: fs.Stats;
    try { st = fs.statSync(f); } catch { continue; }
    if (st.isFile() && st.mtimeMs < cutoffMs && unlink(f)) buildLogs++;
  }
  return { deploys, commands, buildLogs, requests, alerts };
}

/** True when this call removed the file; one already gone is fine. */
function unlink(f: string): boolean {
  try {
    fs.unlinkSync(f);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** How often the daemon prunes: at its first sweep, then every this many sweeps (as check history prunes every 20th insert). */
export const PRUNE_EVERY_SWEEPS = 20;

/** The daemon's side: prunes at the first sweep and every PRUNE_EVERY_SWEEPS-th after; a failure is one log line. */
export class HistoryRetention {
  private sweeps = 0;

  constructor(private readonly o: { db: Db; stack: string; policy?: RetentionConfigInput; buildLogDir: string; logger: Logger }) {}

  afterSweep(now: number = Date.now()): void {
    if (this.sweeps++ % PRUNE_EVERY_SWEEPS !== 0) return;
    try {
      const r = pruneHistory(this.o.db, { stack: this.o.stack, policy: this.o.policy, buildLogDir: this.o.buildLogDir, now });
      if (Object.values(r).some((n) => n > 0)) this.o.logger.info({ ...r }, 'pruned history past its retention');
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'pruning history failed (tried again later)');
    }
  }
}
