/**
 * Retention of decided human requests and delivered alerts (issue 23: master.db reaches a plateau):
 * a real store; the month's spend survives the pruning of the requests that made it.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import Database from 'better-sqlite3';
import { useTempStore } from '../support/temp-store';
import { openStore } from '../../master/store';
import { MIGRATIONS } from '../../master/store/db';
import { pruneHistory } from '../../master/store/retention';
import { fileRequest } from '../../master/requests/intake';
import { spendReport } from '../../master/requests/spend-report';
import { resolveFleetConfig } from '../../core/stack-config';

const T0 = Date.UTC(2030, 0, 10, 12, 0, 0);
const MIN = 60_000;
const DAY = 86_400_000;
const config = { stack: 'unit', approvalRules: [{ type: 'PAYMENT' as const, maxCost: 20, then: 'approve' as const }], budgets: { PAYMENT: { monthly: 1000 } } };

describe('request and alert retention', () => {
  const store = useTempStore();
  let logs = '';
  beforeAll(() => { logs = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-req-retention-')); });
  afterAll(() => fs.rmSync(logs, { recursive: true, force: true }));
  const prune = (now: number, policy: Record<string, number>) => pruneHistory(store().db, { stack: 'unit', policy, buildLogDir: logs, now });

  it('keeps the newest N decided requests; pending, postponed and approved ones with an action to run stay whatever their age', () => {
    const s = store();
    const rejected = s.requests.create({ type: 'PAYMENT', title: 'no', estimated_cost: 900 }, { now: T0 - MIN });
    s.requests.reject(rejected.id, 'too much', T0 - MIN);
    const paid = Array.from({ length: 12 }, (_, i) => fileRequest(s, config, { type: 'PAYMENT', title: `credits ${i}`, estimated_cost: 5 }, 'api:x', () => T0 + i * MIN));
    expect(paid.every((r) => r.status === 'APPROVED')).toBe(true);
    const pending = s.requests.create({ type: 'CONTENT_APPROVAL', title: 'a post' }, { now: T0 });
    const postponed = s.requests.create({ type: 'DESIGN_DECISION', title: 'later' }, { now: T0 });
    s.requests.postpone(postponed.id, 'next week', T0);
    const update = s.requests.create({ type: 'INFRASTRUCTURE', title: 'update pc', action: { kind: 'update', slave: 'pc', target_commit: 'a'.repeat(40) } }, { now: T0 });
    s.requests.approve(update.id, 'go', T0);

    const r = prune(T0 + 20 * MIN, { requests: 5 });
    expect(r.requests).toBe(8); // 13 decided (1 rejected, then 12 paid), the newest 5 kept
    const left = new Set(s.requests.page({ limit: 100 }).requests.map((q) => q.id));
    for (const q of paid.slice(7)) expect(left.has(q.id)).toBe(true);
    for (const q of paid.slice(0, 7)) expect(left.has(q.id)).toBe(false);
    expect(left.has(rejected.id)).toBe(false);
    expect(s.requests.get(pending.id)?.status).toBe('PENDING');
    expect(s.requests.get(postponed.id)?.status).toBe('POSTPONED');
    expect(s.requests.actionable().map((q) => q.id)).toEqual([update.id]);

    // Once its action ran it is decided like the others, and goes by age.
    s.requests.complete(update.id, 'deployed', T0 + 21 * MIN);
    expect(prune(T0 + 400 * DAY, { requests: 5 }).requests).toBe(6);
    expect(s.requests.page({ limit: 100 }).requests.map((q) => q.id).sort()).toEqual([pending.id, postponed.id].sort());
  });

  it("a month's spend and the budget stay counted after its requests are pruned", () => {
    const s = store();
    for (let i = 0; i < 10; i++) fileRequest(s, config, { type: 'PAYMENT', title: `p${i}`, estimated_cost: 7.1 }, 'api:x', () => T0 + i * MIN);
    const before = spendReport(s.spend, config.budgets, '2030-01');
    expect(before.lines).toEqual([{ type: 'PAYMENT', spent: 71, approved: 10, budget: 1000, percent: 7.1 }]);
    expect(prune(T0 + 11 * MIN, { requests: 1 }).requests).toBe(9);
    expect(spendReport(s.spend, config.budgets, '2030-01')).toEqual(before);

    // Completing an approved request does not count it twice; rejecting a pending one never counts.
    const last = s.requests.page({ limit: 1 }).requests[0];
    s.requests.complete(last.id, 'paid', T0 + 12 * MIN);
    expect(spendReport(s.spend, config.budgets, '2030-01').lines[0]).toMatchObject({ spent: 71, approved: 10 });
    const big = s.requests.create({ type: 'PAYMENT', title: 'big', estimated_cost: 500 }, { now: T0 });
    s.requests.reject(big.id, 'no', T0);
    expect(spendReport(s.spend, config.budgets, '2030-01').lines[0]).toMatchObject({ spent: 71, approved: 10 });
    // A person's approval counts in the month it was given.
    const asked = s.requests.create({ type: 'PAYMENT', title: 'asked', estimated_cost: 29 }, { now: T0 });
    s.requests.approve(asked.id, 'ok', Date.UTC(2030, 1, 1, 0, 0, 1));
    expect(spendReport(s.spend, config.budgets, '2030-02').lines[0]).toMatchObject({ spent: 29, approved: 1 });
    expect(spendReport(s.spend, config.budgets, '2030-01').lines[0]).toMatchObject({ spent: 71, approved: 10 });
  });

  it('keeps the newest N delivered alerts', () => {
    const s = store();
    for (let i = 0; i < 30; i++) {
      const id = s.outbox.enqueue({ kind: 'slave_dead', stack: 'unit', slave: 'pc', data: { previous_state: 'pending', error_tail: `e${i}` } }, T0);
      s.outbox.markDelivered(id, 'telegram', T0);
    }
    expect(prune(T0, { alerts: 10 }).alerts).toBe(20);
    expect(prune(T0, { alerts: 10 }).alerts).toBe(0);
    expect((s.db.prepare('SELECT COUNT(*) AS n FROM alerts_sent').get() as { n: number }).n).toBe(10);
  });

  it('defaults: 5,000 decided requests for a year, 5,000 delivered alerts', () => {
    expect(resolveFleetConfig({}, { stack: 'prod' }).retention).toEqual({ perSlave: 20, days: 30, requests: 5000, requestDays: 365, alerts: 5000 });
    expect(() => resolveFleetConfig({ retention: { requests: 0 } }, { stack: 'prod' })).toThrow(/d8:retention.requests/);
  });
});

describe('the spend_months migration', () => {
  it('counts the spend of the requests a store already had', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-spend-migration-'));
    try {
      const file = path.join(dir, 'master.db');
      const s = openStore(file, []);
      for (let i = 0; i < 3; i++) fileRequest(s, config, { type: 'PAYMENT', title: `p${i}`, estimated_cost: 4 }, 'api:x', () => T0);
      s.close();
      // The store as the version before this migration left it: no ledger, no triggers (nor what later migrations made).
      const at = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE spend_months'));
      const raw = new Database(file);
      raw.exec('DROP TRIGGER spend_counts_insert; DROP TRIGGER spend_uncounts_update; DROP TRIGGER spend_counts_update; DROP TABLE spend_months; DROP TABLE agent_channels');
      raw.pragma(`user_version = ${at}`);
      raw.close();
      const again = openStore(file, []);
      expect(spendReport(again.spend, {}, '2030-01').lines).toEqual([{ type: 'PAYMENT', spent: 12, approved: 3, budget: null, percent: null }]);
      again.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
