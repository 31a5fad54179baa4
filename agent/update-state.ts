/**
 * Health's `update_pending` / `update_failed`. Whatever updates this agent in place (an installer
 * run, a self-update) records its progress in `$D8_STATE_DIR/update.json`:
 *
 *   { "update_pending": true|false, "update_failed": true|false }
 *
 * Missing file, missing D8_STATE_DIR, unreadable or malformed content: both false. The file is
 * re-read at most once per `maxAgeMs`, so health stays cheap.
 */
import fs from 'fs';
import path from 'path';
import { z } from 'zod';

export const UPDATE_STATE_FILE = 'update.json';

const UpdateStateSchema = z.object({
  update_pending: z.boolean().default(false),
  update_failed: z.boolean().default(false),
});
export type UpdateState = z.infer<typeof UpdateStateSchema>;

const NONE: UpdateState = { update_pending: false, update_failed: false };

export function parseUpdateState(text: string): UpdateState {
  try {
    const parsed = UpdateStateSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : NONE;
  } catch {
    return NONE;
  }
}

export class UpdateStateReader {
  private cached: UpdateState = NONE;
  private readAt = -Infinity;
  private readonly file: string | null;

  constructor(stateDir: string | null, private readonly maxAgeMs = 1000) {
    this.file = stateDir === null ? null : path.join(stateDir, UPDATE_STATE_FILE);
  }

  current(): UpdateState {
    if (this.file === null) return NONE;
    const now = Date.now();
    if (now - this.readAt < this.maxAgeMs) return this.cached;
    this.readAt = now;
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      this.cached = NONE;
      return NONE;
    }
    this.cached = parseUpdateState(text);
    return this.cached;
  }
}
