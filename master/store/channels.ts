/** Each slave's channel (table agent_channels), written by the daemon, read by `d8 status` and /metrics. */
import { ChannelStatusSchema, type ChannelStatus } from '../../core/fleet-state';
import type { Db } from './db';
import { nowIso, stmt } from './db';

export class ChannelStore {
  constructor(private readonly db: Db) {}

  record(stack: string, channels: ReadonlyArray<Omit<ChannelStatus, 'updated_at'> & { slave: string }>, now: number = Date.now()): void {
    const put = stmt(this.db, `INSERT OR REPLACE INTO agent_channels (stack, slave, connected, since, last_heartbeat_at, reconnects, last_error, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.db.transaction(() => {
      for (const c of channels) put.run(stack, c.slave, c.connected ? 1 : 0, c.since, c.last_heartbeat_at, c.reconnects, c.last_error, nowIso(now));
    })();
  }

  /** By slave; a row that does not read as a channel is left out. */
  list(stack: string): Map<string, ChannelStatus> {
    const rows = stmt(this.db, 'SELECT * FROM agent_channels WHERE stack = ?').all(stack) as Array<Record<string, unknown> & { slave: string }>;
    const out = new Map<string, ChannelStatus>();
    for (const r of rows) {
      const parsed = ChannelStatusSchema.safeParse({ ...r, connected: r.connected === 1 });
      if (parsed.success) out.set(r.slave, parsed.data);
    }
    return out;
  }
}
