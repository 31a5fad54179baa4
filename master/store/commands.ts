/**
 * Control commands (table control_commands): how `d8 retry` / `d8 update` (and the bot) reach a
 * running daemon. The CLI inserts a row; the daemon claims it within a second, runs it and writes
 * the result; the CLI polls the row. No port, no extra credential: whoever can open the 0600 store
 * in the 0700 D8_HOME is already trusted with the fleet.
 */
import { z } from 'zod';
import type { Db } from './db';
import { nowIso, stmt } from './db';
import { FailureKindSchema } from '../../core/alerts';

export const ControlKindSchema = z.enum(['retry', 'update']);
export type ControlKind = z.infer<typeof ControlKindSchema>;

export const ControlResultSchema = z.object({
  ok: z.boolean(),
  action: z.string(),
  message: z.string(),
  state: z.string().optional(),
  commit: z.string().nullable().optional(),
  build_log_path: z.string().nullable().optional(),
  /** Why it failed, when a deploy (or the lack of an SSH key) was the cause: the CLI's exit status follows it. */
  error_kind: FailureKindSchema.nullable().optional(),
});
export type ControlResult = z.infer<typeof ControlResultSchema>;

export interface ControlCommand {
  id: number; stack: string; kind: ControlKind; slave: string; status: 'queued' | 'running' | 'done';
  created_at: string; finished_at: string | null; result: ControlResult | null;
}

export class ControlCommands {
  constructor(private readonly db: Db) {}

  enqueue(stack: string, kind: ControlKind, slave: string): number {
    return Number(stmt(this.db, "INSERT INTO control_commands (stack, kind, slave, status, created_at) VALUES (?, ?, ?, 'queued', ?)")
      .run(stack, kind, slave, nowIso()).lastInsertRowid);
  }

  /** Claims every queued command of `stack` (marks them running). */
  claim(stack: string): ControlCommand[] {
    return this.db.transaction(() => {
      const rows = stmt(this.db, "SELECT * FROM control_commands WHERE stack = ? AND status = 'queued' ORDER BY id").all(stack) as Array<Record<string, unknown>>;
      for (const r of rows) stmt(this.db, "UPDATE control_commands SET status = 'running' WHERE id = ?").run(r.id);
      return rows.map((r) => this.fromRow({ ...r, status: 'running' }));
    }).immediate();
  }

  finish(id: number, result: ControlResult): void {
    stmt(this.db, "UPDATE control_commands SET status = 'done', finished_at = ?, result = ? WHERE id = ?").run(nowIso(), JSON.stringify(result), id);
  }

  get(id: number): ControlCommand | null {
    const r = stmt(this.db, 'SELECT * FROM control_commands WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r ? this.fromRow(r) : null;
  }

  /** Commands claimed by a daemon that then died are failed, not left hanging. */
  failStale(stack: string, why: string): void {
    stmt(this.db, "UPDATE control_commands SET status = 'done', finished_at = ?, result = ? WHERE stack = ? AND status = 'running'")
      .run(nowIso(), JSON.stringify({ ok: false, action: 'none', message: why }), stack);
  }

  private fromRow(r: Record<string, unknown>): ControlCommand {
    return {
      id: r.id as number, stack: r.stack as string, kind: ControlKindSchema.parse(r.kind), slave: r.slave as string,
      status: r.status as ControlCommand['status'], created_at: r.created_at as string, finished_at: (r.finished_at as string) ?? null,
      result: r.result ? ControlResultSchema.parse(JSON.parse(r.result as string)) : null,
    };
  }
}
