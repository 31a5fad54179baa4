/**
 * Issue 16 end to end: a real `d8 master` (its dashboard server carries the requests API), API
 * tokens made with the real CLI, and a separate program that files requests over HTTP with the
 * package's own RequestsClient (`require('d8-fleet')`). Rules auto-approve under the limit and ask
 * above it; the budget stops auto-approval at the limit and alerts at 80 % and 100 %; a decision
 * taken on Telegram (the Bot API stand-in) is seen by the caller waiting on it; /gastos and the
 * dashboard panel show the spend; a revoked token gets 401; 1,000+ malformed API requests change
 * nothing in the store and do not stop the master.
 */
import { spawn } from 'child_process';
import fs from 'fs';
import path from 'path';
import { Fleet, freePort, waitFor } from './master-support/fleet';
import { TelegramStandIn } from '../support/telegram-standin';
import { httpRequest, type HttpAnswer } from '../support/agent-process';
import type { HumanRequest } from '../../core/requests';

jest.setTimeout(300_000);

const CHAT = 70016;
const CALLER = path.join(__dirname, 'master-support', 'requests-caller.js');

type Step = Record<string, unknown>;
type Outcome = { ok: true; ms: number; result: HumanRequest } | { ok: false; ms: number; status: number; field?: string; message: string };

describe('requests API: other programs ask a person through the master (real processes)', () => {
  const fleet = new Fleet('reqapi');
  const standin = new TelegramStandIn();
  let port = 0;
  let daemon: ReturnType<Fleet['daemon']>;
  const tokens: Record<string, { token: string; file: string; id: string }> = {};

  beforeAll(async () => {
    await standin.start();
    standin.addChat(CHAT);
    port = await freePort();
    fleet.initRepo([], {
      dashboard: { enabled: true, port },
      approvalRules: [{ type: 'PAYMENT', maxCost: 20, then: 'approve' }, { type: 'CONTENT_APPROVAL', then: 'ask' }],
      budgets: { PAYMENT: { monthly: 50 } },
      requestsApi: { ratePerMinute: 1500 },
    });
    daemon = fleet.daemon({ env: { TELEGRAM_TOKEN: standin.token, TELEGRAM_CHAT_ID: String(CHAT), TELEGRAM_API_ROOT: standin.apiRoot } });
    await waitFor(async () => (await api('GET', '/api/requests').catch(() => null))?.status === 401, 60_000, 'the requests API answering');
  });
  afterAll(async () => {
    await fleet.cleanup();
    await standin.stop();
  });

  function api(method: string, p: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
    return httpRequest({
      port, method, path: p, body: opts.body, timeoutMs: 30_000,
      headers: { Host: `127.0.0.1:${port}`, ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}), ...(opts.headers ?? {}) },
    });
  }

  async function makeToken(name: string, scopes: string[]): Promise<void> {
    const out = await fleet.cli(['tokens', 'create', '--name', name, '--scope', ...scopes, '--json']);
    expect(out.code).toBe(0);
    const t = JSON.parse(out.stdout) as { id: string; token: string; scopes: string[] };
    expect(t.scopes).toEqual(scopes);
    const file = path.join(fleet.root, `${name}.token`);
    fs.writeFileSync(file, t.token, { mode: 0o600 });
    tokens[name] = { token: t.token, file, id: t.id };
  }

  /** Runs the separate caller program with `name`'s token; resolves with one outcome per step. */
  function caller(name: string, steps: Step[]): { done: Promise<Outcome[]>; pid: number } {
    const child = spawn(process.execPath, [CALLER, JSON.stringify(steps)], {
      cwd: fleet.root,
      env: { PATH: process.env.PATH, D8_URL: `http://127.0.0.1:${port}`, D8_API_TOKEN_FILE: tokens[name].file },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const done = new Promise<Outcome[]>((resolve, reject) => child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`caller exited ${code}: ${stderr}`));
      resolve(stdout.trim().split('\n').map((l) => JSON.parse(l) as Outcome));
    }));
    return { done, pid: child.pid! };
  }
  const result = (o: Outcome): HumanRequest => {
    if (!o.ok) throw new Error(`step failed: ${o.status} ${o.message}`);
    return o.result;
  };

  it('tokens are made with the CLI, shown once, listed without the secret', async () => {
    await makeToken('shop', ['requests:write']);
    await makeToken('ops', ['requests:decide']);
    const list = await fleet.cli(['tokens', 'list', '--json']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).map((t: { name: string }) => t.name)).toEqual(['shop', 'ops']);
    expect(list.stdout).not.toContain(tokens.shop.token);
    expect(list.stdout).not.toContain(tokens.shop.token.slice(-43));
    const dup = await fleet.cli(['tokens', 'create', '--name', 'shop']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/a live token named "shop" exists/);
  });

  it('a separate program files requests with its token: rules approve under the limit and ask above it', async () => {
    const out = await caller('shop', [
      { op: 'create', input: { type: 'PAYMENT', title: 'Renew example.org', estimated_cost: 12 } },
      { op: 'create', input: { type: 'PAYMENT', title: 'New server', estimated_cost: 30, priority: 'high' } },
      { op: 'create', input: { type: 'CONTENT_APPROVAL', title: 'Publish the post', estimated_cost: 1 } },
    ]).done;
    const [cheap, dear, post] = out.map(result);
    expect(cheap).toMatchObject({ id: 'req-0001', status: 'APPROVED', auto_rule: 'rule 1 (PAYMENT up to 20: approve)', created_by: 'api:shop' });
    expect(dear).toMatchObject({ status: 'PENDING', auto_rule: null, priority: 'high' });
    expect(post).toMatchObject({ status: 'PENDING', auto_rule: null });
    const stored = fleet.db().requests.get(cheap.id);
    expect(stored).toMatchObject({ status: 'APPROVED', auto_rule: cheap.auto_rule });
    // Asked requests reach Telegram with buttons; the auto-approved one interrupts nobody.
    await standin.waitForMessage(CHAT, (m) => m.text.includes(dear.id) && !!m.reply_markup, 60_000);
    await standin.waitForMessage(CHAT, (m) => m.text.includes(post.id), 60_000);
    expect(standin.sent(CHAT).filter((m) => m.text.includes(cheap.id))).toEqual([]);
  });

  let overBudget: HumanRequest;

  it('the budget stops auto-approval at the limit, says so, and alerts at 80 %', async () => {
    const out = (await caller('shop', [
      { op: 'create', input: { type: 'PAYMENT', title: 'Domain two', estimated_cost: 20 } },
      { op: 'create', input: { type: 'PAYMENT', title: 'Domain three', estimated_cost: 9 } },
      { op: 'create', input: { type: 'PAYMENT', title: 'Domain four', estimated_cost: 10 } },
    ]).done).map(result);
    expect(out.map((r) => r.status)).toEqual(['APPROVED', 'APPROVED', 'PENDING']);
    overBudget = out[2];
    expect(overBudget.notes).toMatch(/not auto-approved: over budget: PAYMENT has 41 of 50 approved this month, and this request's 10 would make 51/);
    const asked = await standin.waitForMessage(CHAT, (m) => m.text.includes(overBudget.id), 60_000);
    expect(asked.text).toMatch(/Not auto-approved: over budget/);
    const alert80 = await standin.waitForMessage(CHAT, /PAYMENT budget at 80 %/, 60_000);
    expect(alert80.text).toMatch(/Approved so far: 41 of 50/);
    expect(standin.sent(CHAT).filter((m) => /PAYMENT budget/.test(m.text))).toHaveLength(1);
  });

  it('a decision taken on Telegram is seen by the program waiting on it; the 100 % alert follows', async () => {
    const waiting = caller('shop', [{ op: 'wait', id: overBudget.id, timeoutMs: 120_000 }]);
    await new Promise((r) => setTimeout(r, 1500)); // the caller is inside its long poll
    const before = Date.now();
    const msg = await standin.waitForMessage(CHAT, (m) => m.text.includes(overBudget.id) && !!m.reply_markup, 10_000);
    standin.injectCallback(CHAT, msg.message_id, `req:approve:${overBudget.id}`);
    const [seen] = await waiting.done;
    expect(seen.ok).toBe(true);
    expect(result(seen)).toMatchObject({ id: overBudget.id, status: 'APPROVED', auto_rule: null });
    expect(result(seen).notes).toMatch(/via Telegram/);
    // It waited for the decision (not a timeout) and woke within a few seconds of it.
    expect(seen.ms).toBeGreaterThan(1000);
    expect(Date.now() - before).toBeLessThan(15_000);
    await standin.waitForMessage(CHAT, /PAYMENT budget used up/, 60_000);
  });

  it('/gastos, the API and the dashboard panel show the month\'s spend against the budget', async () => {
    const before = standin.sent(CHAT).length;
    standin.injectMessage(CHAT, '/gastos');
    const m = await standin.waitFor(() => standin.sent(CHAT).slice(before).find((x) => x.text.includes('Spent in')), 60_000, '/gastos');
    expect(m.text).toMatch(/PAYMENT: 51 of 50 \(102 %\) 🚨 · 4 approved/);
    const s = await api('GET', '/api/spend', { token: tokens.shop.token });
    expect(s.status).toBe(200);
    expect(s.body.lines).toEqual([{ type: 'PAYMENT', spent: 51, approved: 4, budget: 50, percent: 102 }]);
    const cli = await fleet.cli(['requests', 'spend', '--stack', 'reqapi', '--repo', fleet.repo, '--json']);
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout)).toEqual(s.body);
    const page = await api('GET', '/requests');
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/<tr data-type="PAYMENT" class="over"><td>PAYMENT<\/td><td>51<\/td><td>50<\/td><td>102 %<\/td><td>4<\/td><\/tr>/);
    expect(page.text).toContain('auto-approved by rule 1 (PAYMENT up to 20: approve)');
  });

  it('scopes hold: a write token cannot decide, a decide token can', async () => {
    const pending = fleet.db().requests.list({ status: 'PENDING' })[0];
    const denied = await api('POST', `/api/requests/${pending.id}/decision`, { token: tokens.shop.token, body: { decision: 'approve' } });
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatch(/lacks the scope requests:decide/);
    const ok = await api('POST', `/api/requests/${pending.id}/decision`, { token: tokens.ops.token, body: { decision: 'reject', note: 'too dear' } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ id: pending.id, status: 'REJECTED' });
    expect(ok.body.notes).toMatch(/too dear \(API token ops\)/);
    const again = await api('POST', `/api/requests/${pending.id}/decision`, { token: tokens.ops.token, body: { decision: 'reject' } });
    expect(again.status).toBe(409);
  });

  it('at least 1,000 malformed API requests change nothing in the store and do not stop the master', async () => {
    await makeToken('fuzz', ['requests:write']);
    const db = fleet.db().db;
    await waitFor(() => (db.prepare('SELECT COUNT(*) AS n FROM alerts_outbox').get() as { n: number }).n === 0, 60_000, 'the outbox drained');
    const snapshot = () => JSON.stringify({
      requests: db.prepare('SELECT * FROM human_requests ORDER BY seq').all(),
      tokens: db.prepare('SELECT id, name, scopes, hash, created_at, revoked_at FROM api_tokens ORDER BY id').all(),
      alerts: (db.prepare('SELECT COUNT(*) AS n FROM alerts_sent').get() as { n: number }).n + (db.prepare('SELECT COUNT(*) AS n FROM alerts_outbox').get() as { n: number }).n,
      budget: db.prepare('SELECT * FROM budget_alerts ORDER BY month, type, threshold').all(),
    });
    const before = snapshot();
    const existing = fleet.db().requests.list()[0].id;
    const t = tokens.fuzz.token;
    const bodies: Array<[unknown, string | null]> = [
      [{}, 'type'],
      [{ type: 'COFFEE', title: 'x' }, 'type'],
      [{ type: 'PAYMENT' }, 'title'],
      [{ type: 'PAYMENT', title: '' }, 'title'],
      [{ type: 'PAYMENT', title: '   ' }, 'title'],
      [{ type: 'PAYMENT', title: 'x'.repeat(201) }, 'title'],
      [{ type: 'PAYMENT', title: 'x', estimated_cost: -1 }, 'estimated_cost'],
      [{ type: 'PAYMENT', title: 'x', estimated_cost: '12' }, 'estimated_cost'],
      [{ type: 'PAYMENT', title: 'x', priority: 'asap' }, 'priority'],
      [{ type: 'PAYMENT', title: 'x', description: 7 }, 'description'],
      [{ type: 'PAYMENT', title: 'x', created_by: 'someone else' }, 'created_by'],
      [{ type: 'INFRASTRUCTURE', title: 'x', action: { kind: 'update', slave: 'pc' } }, 'action'],
      [{ type: 'PAYMENT', title: 'x', extra: true }, 'extra'],
      [{ type: ['PAYMENT'], title: 'x' }, 'type'],
      [{ type: 'PAYMENT', title: { a: 1 } }, 'title'],
      [[{ type: 'PAYMENT', title: 'x' }], null],
      ['{"type": "PAYMENT", "title": ', null],
      ['null', null],
      ['"PAYMENT"', null],
      ['', null],
    ];
    const expectations: Array<{ status: number; send: () => Promise<HttpAnswer>; field?: string | null }> = [];
    for (const [b, field] of bodies) expectations.push({ status: 400, field, send: () => api('POST', '/api/requests', { token: t, body: b }) });
    expectations.push(
      { status: 415, send: () => api('POST', '/api/requests', { token: t, body: 'type=PAYMENT&title=x', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }) },
      { status: 413, send: () => api('POST', '/api/requests', { token: t, body: { type: 'PAYMENT', title: 'x', description: 'd'.repeat(70 * 1024) } }) },
      { status: 400, field: 'id', send: () => api('GET', '/api/requests/req-1', { token: t }) },
      { status: 400, field: 'path', send: () => api('GET', '/api/requests/%E0%A4%A', { token: t }) },
      { status: 404, send: () => api('GET', '/api/requests/req-9999', { token: t }) },
      { status: 400, field: 'wait', send: () => api('GET', `/api/requests/${existing}?wait=500`, { token: t }) },
      { status: 400, field: 'wait', send: () => api('GET', `/api/requests/${existing}?wait=soon`, { token: t }) },
      { status: 400, field: 'status', send: () => api('GET', '/api/requests?status=LOST', { token: t }) },
      { status: 400, field: 'limit', send: () => api('GET', '/api/requests?limit=0', { token: t }) },
      { status: 400, field: 'month', send: () => api('GET', '/api/spend?month=2026-13', { token: t }) },
      { status: 404, send: () => api('GET', '/api/nothing', { token: t }) },
      { status: 405, send: () => api('DELETE', '/api/requests', { token: t }) },
      { status: 405, send: () => api('PUT', `/api/requests/${existing}/decision`, { token: t, body: { decision: 'approve' } }) },
      { status: 403, send: () => api('POST', `/api/requests/${existing}/decision`, { token: t, body: { decision: 'approve' } }) },
      { status: 400, field: 'decision', send: () => api('POST', `/api/requests/${existing}/decision`, { token: tokens.ops.token, body: { decision: 'maybe' } }) },
      { status: 400, field: 'note', send: () => api('POST', `/api/requests/${existing}/decision`, { token: tokens.ops.token, body: { decision: 'complete', note: 'n'.repeat(501) } }) },
      { status: 400, field: 'extra', send: () => api('POST', `/api/requests/${existing}/decision`, { token: tokens.ops.token, body: { decision: 'complete', extra: 1 } }) },
      { status: 404, send: () => api('POST', '/api/requests/req-9999/decision', { token: tokens.ops.token, body: { decision: 'approve' } }) },
    );
    const unauthenticated: Array<() => Promise<HttpAnswer>> = [
      () => api('POST', '/api/requests', { body: { type: 'PAYMENT', title: 'x' } }),
      () => api('POST', '/api/requests', { token: 'd8api_000000000000_' + 'A'.repeat(43), body: { type: 'PAYMENT', title: 'x' } }),
      () => api('POST', '/api/requests', { token: t.slice(0, -2) + 'zz', body: { type: 'PAYMENT', title: 'x', estimated_cost: 1 } }),
      () => api('GET', '/api/requests', { headers: { Authorization: `Basic ${Buffer.from(`x:${t}`).toString('base64')}` } }),
    ];
    let sent = 0;
    const statuses = new Map<number, number>();
    for (let round = 0; sent < 1000; round++) {
      for (const e of expectations) {
        const r = await e.send();
        sent++;
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        expect([r.status, typeof r.body?.error]).toEqual([e.status, 'string']);
        if (e.field) expect(r.body.field).toBe(e.field);
      }
      // A few bad tokens per round: under the per-address limit of failed authentications.
      if (round < 5) {
        for (const u of unauthenticated) {
          const r = await u();
          sent++;
          expect(r.status).toBe(401);
          expect(r.headers['www-authenticate']).toBe('Bearer realm="d8-api"');
        }
      }
    }
    expect(sent).toBeGreaterThanOrEqual(1000);
    expect(snapshot()).toEqual(before);
    expect(daemon.child.exitCode).toBeNull();
    const fine = await api('GET', '/api/requests?status=PENDING', { token: t });
    expect(fine.status).toBe(200);
  });

  it('GET /api/requests and the dashboard list newest first and page on with before / next_before', async () => {
    await makeToken('pager', ['requests:write']);
    const t = tokens.pager.token;
    const filed: string[] = [];
    for (let i = 0; i < 60; i++) {
      const r = await api('POST', '/api/requests', { token: t, body: { type: 'DESIGN_DECISION', title: `pick option ${i}` } });
      expect(r.status).toBe(201);
      filed.push(r.body.id as string);
    }
    const first = await api('GET', '/api/requests?limit=25', { token: t });
    expect(first.status).toBe(200);
    expect(first.body.requests.map((r: HumanRequest) => r.id)).toEqual(filed.slice(-25).reverse());
    expect(first.body.next_before).toBe(filed[filed.length - 25]);
    // Walking every page: each request once, newest first, the last page ends with null.
    const total = (fleet.db().db.prepare('SELECT COUNT(*) AS n FROM human_requests').get() as { n: number }).n;
    const seen: string[] = [];
    let before: string | null = null;
    do {
      const p = await api('GET', `/api/requests?limit=25${before ? `&before=${before}` : ''}`, { token: t });
      expect(p.status).toBe(200);
      seen.push(...p.body.requests.map((r: HumanRequest) => r.id));
      before = p.body.next_before as string | null;
    } while (before);
    expect(seen).toHaveLength(total);
    expect(seen.slice(0, 60)).toEqual([...filed].reverse());
    expect(seen.map((id) => Number(id.slice(4)))).toEqual([...seen.map((id) => Number(id.slice(4)))].sort((x, y) => y - x));
    const bad = await api('GET', '/api/requests?before=yesterday', { token: t });
    expect(bad.status).toBe(400);
    expect(bad.body.field).toBe('before');

    // The dashboard: decided requests newest first, 50 a page, "older" continues where the page ended.
    for (const id of filed) fleet.db().requests.reject(id, 'no');
    const cards = (html: string) => [...html.slice(html.indexOf('id="decided"')).matchAll(/<article class="request" id="(req-\d+)"/g)].map((m) => m[1]);
    const page1 = await api('GET', '/requests');
    expect(page1.status).toBe(200);
    expect(cards(page1.text)).toEqual(filed.slice(-50).reverse());
    const older = /<a href="\/requests\?before=(req-\d+)" rel="next"/.exec(page1.text);
    expect(older?.[1]).toBe(filed[10]);
    const page2 = await api('GET', `/requests?before=${older![1]}`);
    expect(cards(page2.text).slice(0, 10)).toEqual(filed.slice(0, 10).reverse());
  });

  it('the rate limit answers 429 with Retry-After once a token spends its minute', async () => {
    await makeToken('noisy', ['requests:read']);
    let r: HttpAnswer | undefined;
    for (let batch = 0; batch < 25 && !r; batch++) {
      const answers = await Promise.all(Array.from({ length: 100 }, () => api('GET', '/api/spend', { token: tokens.noisy.token })));
      expect(answers.every((a) => a.status === 200 || a.status === 429)).toBe(true);
      r = answers.find((a) => a.status === 429);
    }
    expect(r?.status).toBe(429);
    expect(Number(r?.headers['retry-after'])).toBeGreaterThan(0);
    expect(r?.body.error).toMatch(/rate limit of 1500 requests per minute for token "noisy"/);
  });

  it('a revoked token gets 401 at once; no token ever reaches the log or the store', async () => {
    const out = await fleet.cli(['tokens', 'revoke', 'shop']);
    expect(out.code).toBe(0);
    const [o] = await caller('shop', [{ op: 'list' }]).done;
    expect(o).toMatchObject({ ok: false, status: 401, message: 'unknown or revoked API token' });
    const log = daemon.log();
    const db = fs.readFileSync(path.join(fleet.home, 'master.db'));
    for (const { token } of Object.values(tokens)) {
      expect(log).not.toContain(token);
      expect(db.includes(Buffer.from(token))).toBe(false);
    }
    expect(log).toMatch(/requests API: shop filed req-0001 \(auto-approved by rule 1/);
  });
});
