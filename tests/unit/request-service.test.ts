/** master/store/requests.ts (the human request service) against a real SQLite file: finding an answered request, and announcing before it. */
import pino from 'pino';
import type { Store } from '../../master/store';
import { RequestService } from '../../master/store/requests';
import { ControlCommands } from '../../master/store/commands';
import { SetAside } from '../../master/store/stored-row';
import { useTempStore } from '../support/temp-store';

describe('request service', () => {
  const temp = useTempStore();
  let store: Store;
  beforeEach(() => { store = temp(); });

  const update = (slave: string, target: string) => ({ type: 'INFRASTRUCTURE' as const, title: `update ${slave}`, action: { kind: 'update' as const, slave, target_commit: target } });

  it('findByAction finds the latest request for a slave and target commit whatever its status (a rejection is an answer)', () => {
    const a = store.requests.create(update('pc', 'c1'));
    store.requests.reject(a.id, 'no');
    expect(store.requests.findByAction('update', 'pc', 'c1')?.id).toBe(a.id);
    const b = store.requests.create(update('pc', 'c1'));
    store.requests.approve(b.id);
    store.requests.complete(b.id, 'failed: boom');
    expect(store.requests.findByAction('update', 'pc', 'c1')?.id).toBe(b.id);
    expect(store.requests.findByAction('update', 'pc', 'c2')).toBeNull();
    expect(store.requests.findByAction('retry', 'pc', 'c1')).toBeNull();
    expect(store.requests.findByAction('update', 'laptop', 'c1')).toBeNull();
    expect(store.requests.findByAction('update', 'pc')?.id).toBe(b.id);
  });

  it('create(…, { announce }) writes the caller\'s alert first, with the new id, in the same transaction', () => {
    const r = store.requests.create(update('pc', 'c1'), {
      announce: (id) => store.outbox.enqueue({ kind: 'update_failed', slave: 'pc', data: { error_tail: 'auth', request_id: id } }),
    });
    const kinds = store.outbox.recent().map((x) => x.alert);
    expect(kinds.map((a) => a.kind)).toEqual(['update_failed', 'human_request']);
    expect(kinds[0].kind === 'update_failed' && kinds[0].data.request_id).toBe(r.id);
    expect(() => store.requests.create(update('pc', 'c2'), { announce: () => { throw new Error('no'); } })).toThrow('no');
    expect(store.requests.list()).toHaveLength(1);
    expect(store.outbox.pendingCount()).toBe(2);
  });

  const payment = (i: number) => ({ type: 'PAYMENT' as const, title: `renewal ${i}`, estimated_cost: 1 });
  const approveAll = () => ({ approve: true as const, rule: 'rule 1' });

  it('actionable() finds an approved update behind 1,001 approved requests without an action (list() windows are newest first)', () => {
    for (let i = 0; i < 1001; i++) store.requests.create(payment(i), { decide: approveAll });
    const u = store.requests.create(update('pc', 'c1'));
    store.requests.approve(u.id, 'go');
    expect(store.requests.actionable().map((r) => r.id)).toEqual([u.id]);
    expect(store.requests.list({ status: 'APPROVED' })[0].id).toBe(u.id);
    // The supervisor's query reads the partial index (INDEXED BY fails to prepare when the index is missing).
    expect(store.db.prepare("EXPLAIN QUERY PLAN SELECT * FROM human_requests INDEXED BY human_requests_actionable WHERE status = 'APPROVED' AND action IS NOT NULL ORDER BY seq").all())
      .toEqual([expect.objectContaining({ detail: 'SCAN human_requests USING INDEX human_requests_actionable' })]);
  });

  it('page() goes newest first; next_before walks every request once, in order, and ends with null', () => {
    const ids = Array.from({ length: 25 }, (_, i) => store.requests.create(payment(i)).id);
    const seen: string[] = [];
    let before: string | undefined;
    const sizes: number[] = [];
    for (;;) {
      const p = store.requests.page({ limit: 10, ...(before ? { before } : {}) });
      seen.push(...p.requests.map((r) => r.id));
      sizes.push(p.requests.length);
      if (!p.next_before) break;
      before = p.next_before;
    }
    expect(sizes).toEqual([10, 10, 5]);
    expect(seen).toEqual([...ids].reverse());
  });

  it('a row another version wrote (an unknown action kind) is set aside from lists and actionable() with one log line, never thrown', () => {
    const lines: string[] = [];
    const logged = new RequestService(store.db, store.outbox, new SetAside(pino({ level: 'warn' }, { write: (l: string) => lines.push(l) })));
    const ok = logged.create(update('pc', 'c1'));
    logged.approve(ok.id);
    const now = new Date(0).toISOString();
    store.db.prepare(`INSERT INTO human_requests (seq, id, type, status, title, description, priority, estimated_cost, created_by, notes, action, created_at, updated_at)
      VALUES (2, 'req-0002', 'INFRASTRUCTURE', 'APPROVED', 'drain pc', '', 'normal', NULL, 'master', NULL, '{"kind":"drain","slave":"pc"}', ?, ?)`).run(now, now);
    for (let i = 0; i < 3; i++) {
      expect(logged.actionable().map((r) => r.id)).toEqual([ok.id]);
      expect(logged.list().map((r) => r.id)).toEqual([ok.id]);
      expect(logged.findByAction('update', 'pc')?.id).toBe(ok.id);
    }
    expect(() => logged.get('req-0002')).toThrow(expect.objectContaining({ code: 'unreadable' }));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ table: 'human_requests', row: 'req-0002', err: expect.stringMatching(/^action\.kind: /) });
  });

  it('claim() answers a control command of an unknown kind as failed (set aside, logged once) and still claims the others', () => {
    const lines: string[] = [];
    const commands = new ControlCommands(store.db, new SetAside(pino({ level: 'warn' }, { write: (l: string) => lines.push(l) })));
    store.db.prepare("INSERT INTO control_commands (stack, kind, slave, status, created_at) VALUES ('dev', 'drain', 'pc', 'queued', ?)").run(new Date(0).toISOString());
    const good = commands.enqueue('dev', 'retry', 'pc');
    expect(commands.claim('dev').map((c) => c.id)).toEqual([good]);
    expect(commands.claim('dev')).toEqual([]);
    const drain = store.db.prepare("SELECT status, result FROM control_commands WHERE kind = 'drain'").get() as { status: string; result: string };
    expect(drain.status).toBe('done');
    expect(JSON.parse(drain.result)).toMatchObject({ ok: false, message: expect.stringMatching(/written by another version/) });
    expect(lines).toHaveLength(1);
  });
});
