/**
 * Notices what changed in the store, whoever changed it (this daemon, a `d8` CLI, another process):
 * a few cheap fingerprint queries every `pollMs`. Listeners get the topics that changed (for the
 * live pages) and every new check row (for the metrics' latency histogram).
 */
import type { Db } from '../store/db';
import { stmt } from '../store/db';
import type { Topic } from './views/layout';

export interface NewCheck { slave: string; ok: boolean; latency_ms: number | null }

export type ChangeListener = (topics: Topic[]) => void;
export type CheckListener = (checks: NewCheck[]) => void;

const FINGERPRINTS: Array<[Exclude<Topic, 'checks'>, string]> = [
  ['slaves', "SELECT group_concat(name || ':' || state || ':' || drift || ':' || COALESCE(commit_sha, '') || ':' || COALESCE(strategy, '') || ':' || failures, '|') AS f FROM (SELECT * FROM slave_state WHERE stack = @stack ORDER BY name)"],
  ['deploys', "SELECT COALESCE(MAX(id), 0) || ':' || COALESCE(MAX(finished_at), '') || ':' || SUM(status = 'running') AS f FROM deploy_history WHERE stack = @stack"],
  ['requests', "SELECT COUNT(*) || ':' || COALESCE(MAX(updated_at), '') AS f FROM human_requests"],
  ['events', "SELECT (SELECT COALESCE(MAX(id), 0) FROM alerts_outbox) || ':' || (SELECT COALESCE(MAX(id), 0) FROM alerts_sent) AS f"],
  ['rollouts', "SELECT COALESCE((SELECT id || ':' || status || ':' || stage || ':' || updated_at FROM rollouts WHERE stack = @stack ORDER BY id DESC LIMIT 1), '') || ':' || COALESCE((SELECT group_concat(slave || '=' || status, ',') FROM rollout_members WHERE rollout_id = (SELECT MAX(id) FROM rollouts WHERE stack = @stack)), '') AS f"],
];

export class StoreWatch {
  private readonly last = new Map<string, string>();
  private lastCheckId: number;
  private timer: NodeJS.Timeout | null = null;
  private readonly changeListeners = new Set<ChangeListener>();
  private readonly checkListeners = new Set<CheckListener>();

  constructor(private readonly db: Db, private readonly stack: string, private readonly pollMs = 250) {
    this.lastCheckId = (stmt(db, 'SELECT COALESCE(MAX(id), 0) AS m FROM check_history').get() as { m: number }).m;
    this.fingerprints();
  }

  onChange(l: ChangeListener): () => void {
    this.changeListeners.add(l);
    return () => this.changeListeners.delete(l);
  }

  onChecks(l: CheckListener): () => void {
    this.checkListeners.add(l);
    return () => this.checkListeners.delete(l);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.poll(), this.pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One look at the store; public so tests and a request handler can force it. */
  poll(): Topic[] {
    let changed: Topic[];
    let checks: NewCheck[];
    try {
      changed = this.fingerprints();
      checks = this.newChecks();
    } catch {
      return []; // a busy or briefly locked store: the next poll sees the change
    }
    if (checks.length) {
      changed.push('checks');
      for (const l of this.checkListeners) l(checks);
    }
    if (changed.length) for (const l of this.changeListeners) l(changed);
    return changed;
  }

  private fingerprints(): Topic[] {
    const changed: Topic[] = [];
    for (const [topic, sql] of FINGERPRINTS) {
      const f = String((stmt(this.db, sql).get({ stack: this.stack }) as { f: unknown }).f ?? '');
      if (this.last.has(topic) && this.last.get(topic) !== f) changed.push(topic);
      this.last.set(topic, f);
    }
    return changed;
  }

  private newChecks(): NewCheck[] {
    const rows = stmt(this.db, 'SELECT id, slave, ok, latency_ms FROM check_history WHERE id > ? AND stack = ? ORDER BY id LIMIT 10000')
      .all(this.lastCheckId, this.stack) as Array<{ id: number; slave: string; ok: number; latency_ms: number | null }>;
    if (rows.length) this.lastCheckId = rows[rows.length - 1].id;
    return rows.map((r) => ({ slave: r.slave, ok: !!r.ok, latency_ms: r.latency_ms }));
  }
}
