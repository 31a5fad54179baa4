/**
 * Which certificate each agent serves (table agent_pins): the fingerprint its install result
 * reported over SSH (a swarm slave's: its start-up line, read on the manager over SSH). A slave with
 * a row is spoken to over HTTPS with that fingerprint pinned; a slave without one (installed before
 * TLS, --no-tls) over plain HTTP until it is redeployed.
 */
import type { Db } from './db';
import { nowIso, stmt } from './db';

export interface AgentPin {
  slave: string;
  fingerprint: string;
  recorded_at: string;
}

export class AgentPinStore {
  constructor(private readonly db: Db) {}

  get(stack: string, slave: string): string | null {
    const r = stmt(this.db, 'SELECT fingerprint FROM agent_pins WHERE stack = ? AND slave = ?').get(stack, slave) as { fingerprint: string } | undefined;
    return r ? r.fingerprint : null;
  }

  list(stack: string): AgentPin[] {
    return stmt(this.db, 'SELECT slave, fingerprint, recorded_at FROM agent_pins WHERE stack = ? ORDER BY slave').all(stack) as AgentPin[];
  }

  /** Records the deployed agent's fingerprint; null drops the pin (the agent speaks plain HTTP). */
  set(stack: string, slave: string, fingerprint: string | null): void {
    if (fingerprint === null) stmt(this.db, 'DELETE FROM agent_pins WHERE stack = ? AND slave = ?').run(stack, slave);
    else stmt(this.db, 'INSERT OR REPLACE INTO agent_pins (stack, slave, fingerprint, recorded_at) VALUES (?, ?, ?, ?)').run(stack, slave, fingerprint, nowIso());
  }

  /** A lookup for the agent client: the pin of `slave` in `stack`, read at each call (a deploy may change it). */
  lookup(stack: string): (slave: string) => string | null {
    return (slave) => this.get(stack, slave);
  }
}
