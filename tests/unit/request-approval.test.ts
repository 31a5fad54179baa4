/**
 * Issue 16's pure parts and its store modules against a real SQLite file: the auto-approval rules,
 * budget levels, the daily summary's schedule (clock injected), API tokens kept as hashes, the rate
 * limiter, and the config keys' errors.
 */
import fs from 'fs';
import type { Store } from '../../master/store';
import { useTempStore } from '../support/temp-store';
import { autoDecision } from '../../master/requests/rules';
import { checkBudgets, reachedThresholds } from '../../master/requests/budget-watch';
import { fileRequest } from '../../master/requests/intake';
import { sendDailySummaryIfDue, summaryDueDay } from '../../master/requests/daily-summary';
import { spendReport } from '../../master/requests/spend-report';
import { checkedMonth, monthOf } from '../../master/requests/month';
import { RateLimiter, AuthFailures } from '../../master/api/rate-limit';
import { ApiTokenError } from '../../master/store/api-tokens';
import { resolveFleetConfig, ConfigError } from '../../core/stack-config';
import { scopeAllows, apiTokenId } from '../../core/api-tokens';
import type { ApprovalRule } from '../../core/approval';
import { AlertSchema } from '../../core/alerts';
import { formatAlert } from '../../master/telegram/format';
import { alertHeadline } from '../../master/notify/headline';

const rules: ApprovalRule[] = [
  { type: 'PAYMENT', maxCost: 20, then: 'approve' },
  { type: 'PAYMENT', then: 'ask' },
  { type: 'CONTENT_APPROVAL', then: 'ask' },
  { type: 'API_ACCOUNT', then: 'approve' },
];

describe('auto-approval rules (pure)', () => {
  it('the first matching rule decides; a cost limit needs a cost within it', () => {
    expect(autoDecision({ type: 'PAYMENT', estimated_cost: 20 }, rules, {}, 0)).toEqual({ approve: true, rule: 'rule 1 (PAYMENT up to 20: approve)' });
    expect(autoDecision({ type: 'PAYMENT', estimated_cost: 20.01 }, rules, {}, 0)).toEqual({ approve: false, note: null });
    expect(autoDecision({ type: 'PAYMENT', estimated_cost: null }, rules, {}, 0)).toEqual({ approve: false, note: null });
    expect(autoDecision({ type: 'CONTENT_APPROVAL', estimated_cost: 0 }, rules, {}, 0)).toEqual({ approve: false, note: null });
    expect(autoDecision({ type: 'API_ACCOUNT', estimated_cost: null }, rules, {}, 0)).toEqual({ approve: true, rule: 'rule 4 (API_ACCOUNT: approve)' });
    expect(autoDecision({ type: 'DESIGN_DECISION', estimated_cost: 1 }, rules, {}, 0)).toEqual({ approve: false, note: null });
    // Order matters: an "ask" first wins over a later "approve".
    expect(autoDecision({ type: 'PAYMENT', estimated_cost: 1 }, [{ type: 'PAYMENT', then: 'ask' }, ...rules], {}, 0).approve).toBe(false);
  });

  it('a request that would exceed its type\'s monthly budget is never auto-approved, and says so', () => {
    const budgets = { PAYMENT: { monthly: 100 } };
    expect(autoDecision({ type: 'PAYMENT', estimated_cost: 20 }, rules, budgets, 80).approve).toBe(true);
    const d = autoDecision({ type: 'PAYMENT', estimated_cost: 20 }, rules, budgets, 80.5);
    expect(d.approve).toBe(false);
    expect(!d.approve && d.note).toBe('over budget: PAYMENT has 80.5 of 100 approved this month, and this request\'s 20 would make 100.5 (rule 1 (PAYMENT up to 20: approve) would have approved it)');
  });

  it('budget levels: 80 % and 100 %', () => {
    expect(reachedThresholds(79.99, 100)).toEqual([]);
    expect(reachedThresholds(80, 100)).toEqual([80]);
    expect(reachedThresholds(100, 100)).toEqual([80, 100]);
    expect(reachedThresholds(250, 100)).toEqual([80, 100]);
  });

  it('months are UTC calendar months', () => {
    expect(monthOf(Date.UTC(2026, 10, 30, 23, 59))).toBe('2026-11');
    expect(monthOf(Date.UTC(2026, 11, 1, 0, 0))).toBe('2026-12');
    expect(checkedMonth('2026-12')).toBe('2026-12');
    expect(() => checkedMonth('2026-13')).toThrow(/not a month/);
  });

  it('the daily summary is due from its time of day on (local time), one per day', () => {
    expect(summaryDueDay(new Date(2026, 10, 30, 8, 59), '09:00')).toBeNull();
    expect(summaryDueDay(new Date(2026, 10, 30, 9, 0), '09:00')).toBe('2026-11-30');
    expect(summaryDueDay(new Date(2026, 11, 1, 23, 30), '09:00')).toBe('2026-12-01');
  });
});

describe('intake, budgets, summary and tokens (real store)', () => {
  const temp = useTempStore();
  let store: Store;
  beforeEach(() => { store = temp(); });
  const config = { stack: 'unit', approvalRules: rules, budgets: { PAYMENT: { monthly: 50 } } };
  const kinds = (): string[] => store.outbox.recent({ limit: 100 }).map((a) => a.alert.kind);
  // One injected clock for every step that reads the time (budgets are per UTC month).
  const at = Date.UTC(2026, 5, 15, 12, 0);
  const clock = () => at;

  it('an auto-approved request records its rule and approval time and interrupts nobody; one above the limit asks as before', () => {
    const a = fileRequest(store, config, { type: 'PAYMENT', title: 'domain', estimated_cost: 12 }, 'api:shop');
    expect(a).toMatchObject({ status: 'APPROVED', auto_rule: 'rule 1 (PAYMENT up to 20: approve)', created_by: 'api:shop' });
    expect(a.approved_at).toBe(a.created_at);
    expect(a.notes).toMatch(/auto-approved by rule 1/);
    expect(kinds()).toEqual([]);
    const b = fileRequest(store, config, { type: 'PAYMENT', title: 'server', estimated_cost: 25 }, 'api:shop');
    expect(b).toMatchObject({ status: 'PENDING', auto_rule: null, approved_at: null, notes: null });
    expect(kinds()).toEqual(['human_request']);
  });

  it('the budget stops auto-approval at the limit, says so in the request and its alert, and alerts once at 80 % and 100 %', () => {
    const costs = [20, 20, 5];
    for (const c of costs) expect(fileRequest(store, config, { type: 'PAYMENT', title: `p${c}`, estimated_cost: c }, 'api:x', clock).status).toBe('APPROVED');
    expect(kinds()).toEqual(['budget_threshold']);
    const over = fileRequest(store, config, { type: 'PAYMENT', title: 'one more', estimated_cost: 6 }, 'api:x', clock);
    expect(over.status).toBe('PENDING');
    expect(over.notes).toMatch(/not auto-approved: over budget: PAYMENT has 45 of 50/);
    const alert = store.outbox.recent({ limit: 10 }).map((a) => a.alert).find((x) => x.kind === 'human_request');
    expect(alert?.kind === 'human_request' && alert.data.auto_note).toMatch(/over budget/);
    expect(formatAlert(alert!).text).toMatch(/Not auto-approved: over budget/);
    // Exactly at the limit is still within it.
    expect(fileRequest(store, config, { type: 'PAYMENT', title: 'exact', estimated_cost: 5 }, 'api:x', clock).status).toBe('APPROVED');
    const levels = store.outbox.recent({ limit: 100 }).map((a) => a.alert).filter((x) => x.kind === 'budget_threshold').map((x) => x.kind === 'budget_threshold' && x.data.threshold);
    expect(levels).toEqual([80, 100]);
    // A person approving the pending one counts too; no level is announced twice.
    store.requests.approve(over.id, undefined, at);
    expect(checkBudgets(store, config.budgets, 'unit', at)).toBe(0);
    const report = spendReport(store.spend, config.budgets, monthOf(at));
    expect(report.lines).toEqual([{ type: 'PAYMENT', spent: 56, approved: 5, budget: 50, percent: 112 }]);
    expect(report.total).toBe(56);
  });

  it('a budget alert for approvals made elsewhere (the CLI) comes from checkBudgets, once per level', () => {
    const r = store.requests.create({ type: 'PAYMENT', title: 'manual', estimated_cost: 45 }, { now: at });
    store.requests.approve(r.id, undefined, at);
    expect(checkBudgets(store, config.budgets, 'unit', at)).toBe(1);
    expect(checkBudgets(store, config.budgets, 'unit', at)).toBe(0);
    const a = store.outbox.recent({ limit: 10 }).map((x) => x.alert).find((x) => x.kind === 'budget_threshold')!;
    expect(alertHeadline(a)).toBe(`PAYMENT spending reached 80 % of its budget for 2026-06: 45 of 50`);
  });

  it('the daily summary (clock injected): not before its time, once a day, only with something to say', () => {
    const cfg = { enabled: true, at: '09:00' };
    const day1 = new Date(2026, 10, 30, 8, 0).getTime();
    expect(sendDailySummaryIfDue(store, cfg, config.budgets, 'unit', day1)).toBe('not_due');
    expect(sendDailySummaryIfDue(store, cfg, config.budgets, 'unit', day1 + 3600_000)).toBe('nothing_to_say');
    expect(sendDailySummaryIfDue(store, cfg, config.budgets, 'unit', day1 + 3 * 3600_000)).toBe('already_sent');
    // Filed on the same injected clock, between day 1's summary and day 2's.
    const filedAt = () => day1 + 5 * 3600_000;
    fileRequest(store, config, { type: 'PAYMENT', title: 'auto one', estimated_cost: 3 }, 'api:x', filedAt);
    fileRequest(store, config, { type: 'CONTENT_APPROVAL', title: 'a post' }, 'api:x', filedAt);
    const day2 = day1 + 24 * 3600_000 + 3600_000;
    expect(sendDailySummaryIfDue(store, cfg, config.budgets, 'unit', day2)).toBe('sent');
    expect(sendDailySummaryIfDue(store, cfg, config.budgets, 'unit', day2 + 60_000)).toBe('already_sent');
    const s = store.outbox.recent({ limit: 10 }).map((x) => x.alert).find((x) => x.kind === 'daily_summary');
    expect(s?.kind).toBe('daily_summary');
    if (s?.kind !== 'daily_summary') return;
    expect(s.data.day).toBe('2026-12-01');
    expect(s.data.auto_approved.map((r) => r.title)).toEqual(['auto one']);
    expect(s.data.pending.map((r) => r.title)).toEqual(['a post']);
    expect(AlertSchema.parse(JSON.parse(JSON.stringify(s)))).toEqual(s);
    const text = formatAlert(s).text;
    expect(text).toMatch(/Daily summary 2026-12-01/);
    expect(text).toMatch(/auto one \(3\) — rule 1/);
    expect(text).toMatch(/a post/);
    expect(sendDailySummaryIfDue(store, { enabled: false, at: '00:00' }, {}, 'unit', day2 + 86400_000)).toBe('not_due');
  });

  it('API tokens: only a hash is stored, verify finds it, a revoked or altered token is refused', () => {
    const t = store.tokens.create('billing', ['requests:write']);
    expect(t.token).toMatch(/^d8api_[a-f0-9]{12}_/);
    expect(apiTokenId(t.token)).toBe(t.id);
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    expect(fs.readFileSync(store.file).includes(Buffer.from(t.token))).toBe(false);
    expect(JSON.stringify(store.tokens.list())).not.toContain(t.token);
    expect(store.tokens.verify(t.token)?.name).toBe('billing');
    expect(store.tokens.verify(t.token.slice(0, -1) + (t.token.endsWith('A') ? 'B' : 'A'))).toBeNull();
    expect(store.tokens.verify('d8api_000000000000_' + 'x'.repeat(43))).toBeNull();
    expect(() => store.tokens.create('billing', ['requests:read'])).toThrow(ApiTokenError);
    expect(() => store.tokens.create('bad name', ['requests:read'])).toThrow(/--name "bad name" must be/);
    expect(() => store.tokens.create('x', ['requests:everything'])).toThrow(/unknown scope "requests:everything"/);
    store.tokens.revoke('billing');
    expect(store.tokens.verify(t.token)).toBeNull();
    expect(store.tokens.list()).toEqual([]);
    expect(store.tokens.list({ all: true })[0].revoked_at).not.toBeNull();
    expect(store.tokens.create('billing', ['requests:read']).name).toBe('billing');
    expect(scopeAllows(['requests:write'], 'requests:read')).toBe(true);
    expect(scopeAllows(['requests:write'], 'requests:decide')).toBe(false);
  });
});

describe('rate limits (clock injected)', () => {
  it('a token bucket per key: a burst of perMinute, then one per 60/perMinute s', () => {
    let t = 0;
    const l = new RateLimiter(6, () => t);
    for (let i = 0; i < 6; i++) expect(l.take('a')).toBe(0);
    expect(l.take('a')).toBe(10_000);
    expect(l.take('b')).toBe(0);
    t += 10_000;
    expect(l.take('a')).toBe(0);
    expect(l.take('a')).toBeGreaterThan(0);
  });

  it('failed authentications: 429 after the limit, until the window passes', () => {
    let t = 0;
    const f = new AuthFailures(3, 60_000, () => t);
    expect([f.fail('ip'), f.fail('ip'), f.fail('ip')]).toEqual([0, 0, 0]);
    expect(f.fail('ip')).toBe(60_000);
    expect(f.fail('other')).toBe(0);
    t += 61_000;
    expect(f.fail('ip')).toBe(0);
  });
});

describe('config keys (issue 16)', () => {
  const resolve = (raw: Record<string, unknown>) => resolveFleetConfig({ slaves: [], ...raw }, { stack: 's', env: {} });
  it('valid rules, budgets and summary time resolve; defaults apply', () => {
    const c = resolve({ approvalRules: [{ type: 'PAYMENT', maxCost: 20, then: 'approve' }], budgets: { PAYMENT: { monthly: 100 } }, dailySummary: { at: '18:30' } });
    expect(c.approvalRules).toEqual([{ type: 'PAYMENT', maxCost: 20, then: 'approve' }]);
    expect(c.dailySummary).toEqual({ enabled: true, at: '18:30' });
    expect(c.requestsApi).toEqual({ ratePerMinute: 120 });
    expect(resolve({}).approvalRules).toEqual([]);
  });
  it.each([
    [{ approvalRules: [{ type: 'PAYMENT', then: 'maybe' }] }, /d8:approvalRules\[0\]\.then must be approve or ask/],
    [{ approvalRules: [{ type: 'COFFEE', then: 'approve' }] }, /d8:approvalRules\[0\]\.type Invalid enum value/],
    [{ approvalRules: [{ type: 'PAYMENT', maxCost: -1, then: 'approve' }] }, /d8:approvalRules\[0\]\.maxCost must not be negative/],
    [{ budgets: { PAYMENT: { monthly: 0 } } }, /d8:budgets\.PAYMENT\.monthly must be more than 0/],
    [{ budgets: { PAYMENT: { monthly: 5, weekly: 5 } } }, /d8:budgets\.PAYMENT\.weekly is not a known key/],
    [{ dailySummary: { at: '25:00' } }, /d8:dailySummary\.at must be a time of day like 09:00/],
  ])('%j is refused naming the key', (raw, msg) => {
    expect(() => resolve(raw)).toThrow(ConfigError);
    expect(() => resolve(raw)).toThrow(msg);
  });
});
