/** The store's outbox, dispatcher and human requests against a real SQLite file (notifier: a recording stand-in). */
import fs from 'fs';
import os from 'os';
import path from 'path';
import pino from 'pino';
import { openStore, type Store } from '../../master/store';
import { AlertDispatcher } from '../../master/notify/dispatcher';
import { NotifierRetryAfter, type Alert, type Notifier } from '../../master/notify/notifier';
import { RequestError } from '../../master/store/requests';

const silent = pino({ level: 'silent' });

/** Stand-in for Telegram: refuses the first `failures` sends, records the accepted ones. */
class RecordingNotifier implements Notifier {
  readonly name = 'recording';
  readonly accepted: Alert[] = [];
  calls = 0;
  constructor(private failures: number, private readonly retryAfterMs?: number) {}
  async send(a: Alert): Promise<void> {
    this.calls++;
    if (this.failures > 0) {
      this.failures--;
      if (this.retryAfterMs !== undefined) throw new NotifierRetryAfter('429', this.retryAfterMs);
      throw new Error('network down');
    }
    this.accepted.push(a);
  }
}

describe('master store', () => {
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-store-'));
    store = openStore(path.join(dir, 'master.db'), ['s3cr3t-token-value']);
  });
  afterEach(() => {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is a private WAL database', () => {
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(fs.statSync(path.join(dir, 'master.db')).mode & 0o777).toBe(0o600);
  });

  it('delivers the outbox in order, keeping failed alerts until accepted, scrubbing secrets', async () => {
    for (const i of [1, 2, 3]) store.outbox.enqueue({ kind: 'slave_dead', slave: `s${i}`, data: { error_tail: i === 2 ? 'token s3cr3t-token-value leaked' : '' } });
    const n = new RecordingNotifier(2);
    const d = new AlertDispatcher(store.outbox, n, silent, { pollMs: 20, backoff: { baseMs: 30, maxMs: 60 } });
    d.start();
    const deadline = Date.now() + 10_000;
    while (n.accepted.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await d.stop();
    expect(n.accepted.map((a) => a.slave)).toEqual(['s1', 's2', 's3']);
    expect(n.calls).toBe(5);
    expect(n.accepted[1].kind === 'slave_dead' && n.accepted[1].data.error_tail).toBe('token *** leaked');
    expect(store.outbox.pendingCount()).toBe(0);
    expect(store.outbox.sent().map((a) => a.slave)).toEqual(['s1', 's2', 's3']);
  });

  it('a store error after a drain (the outbox unreadable) is logged, not thrown; delivery resumes when the store is back', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
    const n = new RecordingNotifier(0);
    const d = new AlertDispatcher(store.outbox, n, log, { pollMs: 20 });
    store.db.exec('ALTER TABLE alerts_outbox RENAME TO alerts_outbox_away');
    d.start();
    try {
      await expect(d.drain()).resolves.toBeUndefined();
      expect(lines.some((l) => /no such table: alerts_outbox/.test(l))).toBe(true);
      store.db.exec('ALTER TABLE alerts_outbox_away RENAME TO alerts_outbox');
      store.outbox.enqueue({ kind: 'update_done', slave: 'a', data: { slave_commit: null } });
      const deadline = Date.now() + 10_000;
      while (n.accepted.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    } finally {
      await d.stop();
    }
    expect(n.accepted.map((a) => a.slave)).toEqual(['a']);
  });

  it('honours a notifier\'s retry_after', async () => {
    store.outbox.enqueue({ kind: 'update_done', slave: 'a', data: { slave_commit: null } });
    const n = new RecordingNotifier(1, 400);
    const d = new AlertDispatcher(store.outbox, n, silent, { pollMs: 20 });
    const t0 = Date.now();
    d.start();
    while (n.accepted.length < 1 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
    await d.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(380);
    expect(n.accepted).toHaveLength(1);
  });

  it('human requests: ids, transitions, notes, events and an alert per change', () => {
    const events: string[] = [];
    store.requests.onChange((e) => events.push(`${e.type}:${e.request.id}:${e.request.status}`));
    const a = store.requests.create({ type: 'PAYMENT', title: 'Buy domain', estimated_cost: 12.99, created_by: 'NicheDiscovery' });
    const b = store.requests.create({ type: 'INFRASTRUCTURE', title: 'Fix pc', priority: 'high', action: { kind: 'retry', slave: 'pc' } });
    expect([a.id, b.id]).toEqual(['req-0001', 'req-0002']);
    expect(store.requests.approve(a.id).status).toBe('APPROVED');
    expect(store.requests.complete(a.id, 'bought with PayPal').notes).toMatch(/COMPLETED: bought with PayPal/);
    expect(() => store.requests.approve(a.id)).toThrow(/COMPLETED; it cannot become APPROVED \(it is final\)/);
    expect(store.requests.postpone(b.id).status).toBe('POSTPONED');
    expect(store.requests.reject(b.id, 'not now').status).toBe('REJECTED');
    expect(() => store.requests.get('req-9999')).toThrow(RequestError);
    expect(() => store.requests.approve('42')).toThrow(/not a request id/);
    expect(() => store.requests.create({ type: 'NOPE' as never, title: 'x' })).toThrow(/invalid request: type/);
    expect(store.requests.list({ open: true })).toHaveLength(0);
    expect(events).toEqual(['created:req-0001:PENDING', 'created:req-0002:PENDING', 'changed:req-0001:APPROVED',
      'changed:req-0001:COMPLETED', 'changed:req-0002:POSTPONED', 'changed:req-0002:REJECTED']);
    const kinds = (store.db.prepare('SELECT kind FROM alerts_outbox ORDER BY id').all() as Array<{ kind: string }>).map((r) => r.kind);
    expect(kinds).toEqual(['human_request', 'human_request', 'request_changed', 'request_changed', 'request_changed', 'request_changed']);
  });
});
