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
import { parseStored, parseStoredJson, SetAside, type Parsed } from './stored-row';

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
  constructor(private readonly db: Db, private readonly setAside: SetAside = new SetAside()) {}

  enqueue(stack: string, kind: ControlKind, slave: string, now: number = Date.now()): number {
    return Number(stmt(this.db, "INSERT INTO control_commands (stack, kind, slave, status, created_at) VALUES (?, ?, ?, 'queued', ?)")
      .run(stack, kind, slave, nowIso(now)).lastInsertRowid);
  }

  /**
   * Claims every queued command of `stack` (marks them running). One this version does not know
   * (a newer CLI's) is answered at once as failed and set aside, so its caller is not left waiting.
   */
  claim(stack: string): ControlCommand[] {
    return this.db.transaction(() => {
      const rows = stmt(this.db, "SELECT * FROM control_commands WHERE stack = ? AND status = 'queued' ORDER BY id").all(stack) as Array<Record<string, unknown>>;
      const out: ControlCommand[] = [];
      for (const r of rows) {
        const c = this.parse({ ...r, status: 'running' });
        if (c.ok) {
          stmt(this.db, "UPDATE control_commands SET status = 'running' WHERE id = ?").run(r.id);
          out.push(c.value);
          continue;
        }
        this.setAside.report('control_commands', r.id as number, c.invalid);
        this.finish(r.id as number, { ok: false, action: 'none', message: `the running master cannot read this command (${c.invalid}); it was written by another version of D8: restart the master on the same version` });
      }
      return out;
    }).immediate();
  }

  finish(id: number, result: ControlResult, now: number = Date.now()): void {
    stmt(this.db, "UPDATE control_commands SET status = 'done', finished_at = ?, result = ? WHERE id = ?").run(nowIso(now), JSON.stringify(result), id);
  }

  /** The command, or null when there is none or this version cannot read it (reported once). */
  get(id: number): ControlCommand | null {
    const r = stmt(this.db, 'SELECT * FROM control_commands WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    if (!r) return null;
    const c = this.parse(r);
    if (c.ok) return c.value;
    this.setAside.report('control_commands', id, c.invalid);
    return null;
  }

  /** Commands claimed by a daemon that then died are failed, not left hanging. */
  failStale(stack: string, why: string): void {
    stmt(this.db, "UPDATE control_commands SET status = 'done', finished_at = ?, result = ? WHERE stack = ? AND status = 'running'")
      .run(nowIso(), JSON.stringify({ ok: false, action: 'none', message: why }), stack);
  }

  private parse(r: Record<string, unknown>): Parsed<ControlCommand> {
    const kind = parseStored(ControlKindSchema, r.kind);
    if (!kind.ok) return { ok: false, invalid: `kind${kind.invalid.replace(/^\(root\)/, '')}` };
    let result: ControlResult | null = null;
    if (r.result) {
      const p = parseStoredJson(ControlResultSchema, r.result as string);
      if (!p.ok) return { ok: false, invalid: `result.${p.invalid}` };
      result = p.value;
    }
    return { ok: true, value: {
      id: r.id as number, stack: r.stack as string, kind: kind.value, slave: r.slave as string,
      status: r.status as ControlCommand['status'], created_at: r.created_at as string, finished_at: (r.finished_at as string) ?? null, result,
    } };
  }
}
