/**
 * The human request store and its small service API. Every change is one transaction that also
 * enqueues the matching alert, so a request is never created without its notification. Listeners
 * (the Telegram bot, the daemon's update-on-approval) hear about changes made in this process;
 * changes from another process are seen through the alerts they enqueue.
 */
import type { z } from 'zod';
import type { Db } from './db';
import { nowIso } from './db';
import type { AlertOutbox } from './outbox';
import { parseStored, parseStoredJson, SetAside, type Parsed } from './stored-row';
import {
  CreateRequestSchema, HumanRequestSchema, RequestActionSchema, RequestIdSchema, RequestStatusSchema, TRANSITIONS, requestSeq,
  type CreateRequestInput, type HumanRequest, type RequestAction, type RequestPage, type RequestStatus,
} from '../../core/requests';

export class RequestError extends Error {
  /** unreadable: the row was written by another version of D8 and this one cannot parse it. */
  constructor(message: string, readonly code: 'not_found' | 'invalid' | 'bad_transition' | 'unreadable') {
    super(message);
    this.name = 'RequestError';
  }
}

export type CreateRequestParsed = z.output<typeof CreateRequestSchema>;

export type RequestEvent = { type: 'created' | 'changed'; request: HumanRequest; previous?: RequestStatus };
export type RequestListener = (event: RequestEvent) => void;

interface Row {
  id: string; type: string; status: string; title: string; description: string; priority: string;
  estimated_cost: number | null; created_by: string; notes: string | null; action: string | null;
  created_at: string; updated_at: string; resolved_at: string | null; approved_at: string | null; auto_rule: string | null;
}

/**
 * What the auto-approval rules say about a new request, decided inside its transaction (so two
 * requests filed at once cannot both fit under the same budget): approve it under `rule`, or ask a
 * person, with `note` saying why the rules did not approve it (null when no rule applied).
 */
export type AutoDecision = { approve: true; rule: string } | { approve: false; note: string | null };

function parseRow(r: Row): Parsed<HumanRequest> {
  let action: unknown = null;
  if (r.action) {
    const a = parseStoredJson(RequestActionSchema, r.action);
    if (!a.ok) return { ok: false, invalid: `action.${a.invalid}` };
    action = a.value;
  }
  return parseStored(HumanRequestSchema, { ...r, action });
}

export interface ListFilter {
  status?: RequestStatus | RequestStatus[];
  /** Only requests still waiting for a person (PENDING or POSTPONED). */
  open?: boolean;
  /** At most this many (default 1000), newest first. */
  limit?: number;
  /** Only requests filed before this one (the `next_before` of the previous page). */
  before?: string;
}

export class RequestService {
  private readonly listeners = new Set<RequestListener>();

  constructor(private readonly db: Db, private readonly outbox: AlertOutbox, private readonly setAside: SetAside = new SetAside()) {}

  /** The row as a request, or null (reported once) when this version cannot read it. */
  private read(r: Row): HumanRequest | null {
    const p = parseRow(r);
    if (p.ok) return p.value;
    this.setAside.report('human_requests', r.id, p.invalid);
    return null;
  }

  private readAll(rows: Row[]): HumanRequest[] {
    return rows.map((r) => this.read(r)).filter((r): r is HumanRequest => r !== null);
  }

  onChange(listener: RequestListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: RequestEvent): void {
    for (const l of this.listeners) {
      try { l(e); } catch { /* a listener's bug must not undo a committed change */ }
    }
  }

  /**
   * Files a request (and its alert) in one transaction. `announce` runs inside it with the new id,
   * before the request's own alert: a caller's alert that explains the request is delivered first.
   */
  create(input: CreateRequestInput, opts: { announce?: (id: string) => void; decide?: (c: CreateRequestParsed) => AutoDecision; now?: number } = {}): HumanRequest {
    const parsed = CreateRequestSchema.safeParse(input);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new RequestError(`invalid request: ${i.path.join('.') || '(root)'} ${i.message}`, 'invalid');
    }
    // An escalation's text quotes errors, which may hold a secret: kept and shown scrubbed.
    const c = { ...parsed.data, title: this.outbox.scrub(parsed.data.title), description: this.outbox.scrub(parsed.data.description) };
    const req = this.db.transaction((): HumanRequest => {
      const now = nowIso(opts.now);
      const seq = ((this.db.prepare('SELECT COALESCE(MAX(seq), 0) AS m FROM human_requests').get() as { m: number }).m) + 1;
      const id = `req-${String(seq).padStart(4, '0')}`;
      const auto = opts.decide?.(c) ?? { approve: false, note: null };
      const status: RequestStatus = auto.approve ? 'APPROVED' : 'PENDING';
      const notes = auto.approve ? `[${now}] APPROVED: auto-approved by ${auto.rule}` : auto.note ? `[${now}] not auto-approved: ${auto.note}` : null;
      this.db.prepare(`INSERT INTO human_requests (seq, id, type, status, title, description, priority, estimated_cost, created_by, notes, action, created_at, updated_at, approved_at, auto_rule)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(seq, id, c.type, status, c.title, c.description, c.priority, c.estimated_cost, c.created_by, notes, c.action ? JSON.stringify(c.action) : null, now, now,
          auto.approve ? now : null, auto.approve ? auto.rule : null);
      const r = this.get(id);
      opts.announce?.(id);
      // An auto-approved request interrupts nobody: the daily summary reports it.
      if (auto.approve) return r;
      this.outbox.enqueue({
        kind: 'human_request',
        slave: c.action?.slave ?? null,
        data: {
          request_id: id, request_type: c.type, request_status: 'PENDING', priority: c.priority, title: c.title,
          description: c.description, estimated_cost: c.estimated_cost, created_by: c.created_by,
          ...(auto.note ? { auto_note: auto.note } : {}),
        },
      });
      return r;
    }).immediate();
    this.emit({ type: 'created', request: req });
    return req;
  }

  get(id: string): HumanRequest {
    const row = this.db.prepare('SELECT * FROM human_requests WHERE id = ?').get(id) as Row | undefined;
    if (!row) throw new RequestError(`no human request ${id} (list them with \`d8 requests list\`)`, 'not_found');
    const r = this.read(row);
    if (!r) throw new RequestError(`${id} was written by another version of D8 and this one cannot read it; update (git pull, npm ci) and restart`, 'unreadable');
    return r;
  }

  /** Requests newest first; `next_before` continues the list (null when this page is the last). */
  page(filter: ListFilter = {}): RequestPage {
    let statuses: RequestStatus[] | undefined = filter.open ? ['PENDING', 'POSTPONED'] : undefined;
    if (filter.status) statuses = (Array.isArray(filter.status) ? filter.status : [filter.status]).map((s) => RequestStatusSchema.parse(s));
    const where: string[] = [];
    const args: unknown[] = [];
    if (statuses) { where.push(`status IN (${statuses.map(() => '?').join(',')})`); args.push(...statuses); }
    if (filter.before !== undefined) { where.push('seq < ?'); args.push(requestSeq(RequestIdSchema.parse(filter.before))); }
    const limit = filter.limit ?? 1000;
    const rows = this.db.prepare(`SELECT * FROM human_requests ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`).all(...args, limit) as Row[];
    // The cursor is the last row read, readable or not: a set-aside row never stops the paging.
    return { requests: this.readAll(rows), next_before: rows.length === limit ? rows[rows.length - 1].id : null };
  }

  list(filter: ListFilter = {}): HumanRequest[] {
    return this.page(filter).requests;
  }

  /** How many requests have one of these statuses (default: the open ones). */
  count(statuses: RequestStatus[] = ['PENDING', 'POSTPONED']): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM human_requests WHERE status IN (${statuses.map(() => '?').join(',')})`).get(...statuses) as { n: number }).n;
  }

  /**
   * Approved requests with a follow-up action (an update, a retry) not run yet, oldest first: what
   * the supervisor runs. Its own (indexed) query: requests without an action stay APPROVED for
   * ever and must not push these out of a window.
   */
  actionable(): HumanRequest[] {
    return this.readAll(this.db.prepare("SELECT * FROM human_requests INDEXED BY human_requests_actionable WHERE status = 'APPROVED' AND action IS NOT NULL ORDER BY seq").all() as Row[]);
  }

  approve(id: string, note?: string, now?: number): HumanRequest { return this.transition(id, 'APPROVED', note, now); }
  reject(id: string, reason?: string, now?: number): HumanRequest { return this.transition(id, 'REJECTED', reason, now); }
  postpone(id: string, note?: string, now?: number): HumanRequest { return this.transition(id, 'POSTPONED', note, now); }
  complete(id: string, note?: string, now?: number): HumanRequest { return this.transition(id, 'COMPLETED', note, now); }

  private transition(id: string, to: RequestStatus, note: string | undefined, at: number = Date.now()): HumanRequest {
    const idCheck = RequestIdSchema.safeParse(id);
    if (!idCheck.success) throw new RequestError(`"${id}" is not a request id: ${idCheck.error.issues[0].message}`, 'invalid');
    let previous: RequestStatus = 'PENDING';
    const req = this.db.transaction((): HumanRequest => {
      const cur = this.get(id);
      previous = cur.status;
      if (cur.status === to) return cur;
      if (!TRANSITIONS[cur.status].includes(to)) {
        const allowed = TRANSITIONS[cur.status];
        throw new RequestError(`${id} is ${cur.status}; it cannot become ${to}` +
          (allowed.length ? ` (it can become ${allowed.join(' or ')})` : ' (it is final)'), 'bad_transition');
      }
      const now = nowIso(at);
      const notes = note && note.trim() ? (cur.notes ? `${cur.notes}\n` : '') + `[${now}] ${to}: ${note.trim()}` : cur.notes;
      const resolved = to === 'REJECTED' || to === 'COMPLETED' ? now : null;
      this.db.prepare('UPDATE human_requests SET status = ?, notes = ?, updated_at = ?, resolved_at = ?, approved_at = CASE WHEN ? THEN ? ELSE approved_at END WHERE id = ?')
        .run(to, notes, now, resolved, to === 'APPROVED' ? 1 : 0, now, id);
      const updated = this.get(id);
      this.outbox.enqueue({
        kind: 'request_changed',
        slave: updated.action?.slave ?? null,
        data: {
          request_id: id, request_type: updated.type, request_status: to, previous_status: cur.status, priority: updated.priority,
          title: updated.title, note: note?.trim() ?? '',
        },
      });
      return updated;
    }).immediate();
    if (previous !== req.status) this.emit({ type: 'changed', request: req, previous });
    return req;
  }

  /**
   * The latest request already filed for this action, whatever its status (a rejection is an answer
   * too: the master does not ask again for the same target commit).
   */
  findByAction(kind: RequestAction['kind'], slave: string, targetCommit?: string): HumanRequest | null {
    const rows = this.db.prepare("SELECT * FROM human_requests WHERE action IS NOT NULL AND json_extract(action, '$.kind') = ? AND json_extract(action, '$.slave') = ? ORDER BY seq DESC")
      .all(kind, slave) as Row[];
    return this.readAll(rows).find((r) => targetCommit === undefined || r.action?.target_commit === targetCommit) ?? null;
  }
}
