/** The dashboard's pure parts and its store watch (on a real SQLite store in a temp D8_HOME). */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { resolveFleetConfig, ConfigError } from '../../core/stack-config';
import { LoginLimiter, SessionStore, isLoopbackBind, resolveDashboardToken, DashboardTokenError } from '../../master/dashboard/auth';
import { categoryOf, eventFromPayload } from '../../master/dashboard/event-feed';
import { checkChart } from '../../master/dashboard/views/chart';
import { driftText } from '../../master/dashboard/views/fleet';
import { StoreWatch } from '../../master/dashboard/store-watch';
import { openStore } from '../../master/store';
import { rolloutPanel } from '../../master/dashboard/views/rollout';
import { rolloutView } from '../../master/rollout/view';
import { RolloutPolicySchema, type Rollout } from '../../core/rollout';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'd8-dash-unit-'));

describe('d8:dashboard config', () => {
  it('defaults to enabled on 127.0.0.1:7500', () => {
    expect(resolveFleetConfig({}, { stack: 't', env: {} }).dashboard).toEqual({ enabled: true, port: 7500, bind: '127.0.0.1', trustProxy: false });
  });
  it('names the key of a bad value or an unknown key', () => {
    expect(() => resolveFleetConfig({ dashboard: { port: 70000 } }, { stack: 't', env: {} })).toThrow(/d8:dashboard\.port must be between 1 and 65535/);
    expect(() => resolveFleetConfig({ dashboard: { prot: 1 } }, { stack: 't', env: {} })).toThrow(ConfigError);
    expect(() => resolveFleetConfig({ dashboard: { prot: 1 } }, { stack: 't', env: {} })).toThrow(/d8:dashboard\.prot is not a known key/);
    expect(() => resolveFleetConfig({ dashboard: { enabled: 'no' } }, { stack: 't', env: {} })).toThrow(/d8:dashboard\.enabled/);
  });
});

describe('loopback', () => {
  it.each([['127.0.0.1', true], ['::1', true], ['localhost', true], ['LOCALHOST', true], ['127.0.0.2', false], ['0.0.0.0', false], ['::', false], ['192.168.1.5', false]])(
    '%s -> %s', (bind, expected) => expect(isLoopbackBind(bind)).toBe(expected));
});

describe('dashboard token', () => {
  it('refuses a weak D8_DASHBOARD_TOKEN with the fix', () => {
    expect(() => resolveDashboardToken({ D8_HOME: tmp(), D8_DASHBOARD_TOKEN: 'changeme' })).toThrow(DashboardTokenError);
    expect(() => resolveDashboardToken({ D8_HOME: tmp(), D8_DASHBOARD_TOKEN: 'short' })).toThrow(/openssl rand/);
  });
  it('takes a strong D8_DASHBOARD_TOKEN and writes no file', () => {
    const home = tmp();
    const t = resolveDashboardToken({ D8_HOME: home, D8_DASHBOARD_TOKEN: 'a-strong-token-1234567890abcdefXYZ' });
    expect(t).toEqual({ token: 'a-strong-token-1234567890abcdefXYZ', source: 'env', file: null });
    expect(fs.existsSync(path.join(home, 'dashboard-token'))).toBe(false);
  });
  it('generates one into D8_HOME (0600), reuses it, and replaces a weak one', () => {
    const home = tmp();
    const a = resolveDashboardToken({ D8_HOME: home });
    expect(a.source).toBe('generated');
    expect(fs.statSync(a.file!).mode & 0o777).toBe(0o600);
    const b = resolveDashboardToken({ D8_HOME: home });
    expect(b).toEqual({ token: a.token, source: 'file', file: a.file });
    fs.writeFileSync(a.file!, 'password\n');
    const c = resolveDashboardToken({ D8_HOME: home });
    expect(c.source).toBe('generated');
    expect(c.token).not.toBe('password');
  });
});

describe('LoginLimiter', () => {
  it('locks a client out after 5 failures for the rest of the window, then lets it try again', () => {
    let now = 1_000_000;
    const l = new LoginLimiter(5, 60_000, 50, () => now);
    for (let i = 0; i < 4; i++) l.fail('a');
    expect(l.retryAfterMs('a')).toBe(0);
    l.fail('a');
    expect(l.retryAfterMs('a')).toBe(60_000);
    expect(l.retryAfterMs('b')).toBe(0);
    now += 30_000;
    expect(l.retryAfterMs('a')).toBe(30_000);
    now += 30_001;
    expect(l.retryAfterMs('a')).toBe(0);
  });
  it('a success clears the client; many clients together hit the global cap', () => {
    const now = 5_000;
    const l = new LoginLimiter(5, 60_000, 10, () => now);
    for (let i = 0; i < 3; i++) l.fail('a');
    l.succeed('a');
    for (let i = 0; i < 4; i++) l.fail('a');
    expect(l.retryAfterMs('a')).toBe(0);
    for (let i = 0; i < 6; i++) l.fail(`spread-${i}`);
    expect(l.retryAfterMs('fresh')).toBeGreaterThan(0);
  });
});

describe('SessionStore', () => {
  it('expires sessions and evicts the oldest beyond its cap', () => {
    let now = 0;
    const s = new SessionStore(1000, 2, () => now);
    const a = s.create();
    expect(s.get(a.id)?.csrf).toBe(a.csrf);
    now = 1000;
    expect(s.get(a.id)).toBeNull();
    const b = s.create();
    now = 1001;
    const c = s.create();
    const d = s.create();
    expect(s.get(b.id)).toBeNull();
    expect(s.get(c.id)).not.toBeNull();
    expect(s.get(d.id)).not.toBeNull();
    expect(s.get(undefined)).toBeNull();
  });
});

describe('event feed adapter', () => {
  it('reads today\'s alerts (title and text)', () => {
    const e = eventFromPayload(3, JSON.stringify({ kind: 'slave_dead', slave: 'vps', title: 'vps is dead', text: 'connect ECONNREFUSED', data: {}, created_at: '2026-01-01T00:00:00.000Z' }), 'x', true);
    expect(e).toEqual({ id: 3, delivered: true, kind: 'slave_dead', category: 'state', slave: 'vps', at: '2026-01-01T00:00:00.000Z', title: 'vps is dead', text: 'connect ECONNREFUSED' });
  });
  it('makes a line for a typed alert that carries only data (no title or text)', () => {
    const e = eventFromPayload(4, JSON.stringify({ kind: 'update_failed', slave: 'pi', data: { engine: 'direct', attempt: 2, master_commit: 'abc' } }), '2026-01-02T00:00:00.000Z', false);
    expect(e?.title).toBe('update failed · pi');
    expect(e?.text).toBe('engine: direct · attempt: 2 · master_commit: abc');
    expect(e?.category).toBe('deploy');
    expect(e?.at).toBe('2026-01-02T00:00:00.000Z');
  });
  it('skips what is not an alert', () => {
    expect(eventFromPayload(1, '{not json', 'x', true)).toBeNull();
    expect(eventFromPayload(1, '[]', 'x', true)).toBeNull();
  });
  it.each([['human_request', 'decision'], ['request_changed', 'decision'], ['master_version_changed', 'master'], ['slave_recovered', 'state'], ['something_new', 'alert']])(
    '%s is a %s event', (kind, cat) => expect(categoryOf(kind)).toBe(cat));
});

describe('views', () => {
  it('the check chart draws latency as a line and each failure as a red tick', () => {
    const svg = checkChart([
      { at: '2026-01-01T00:00:03Z', ok: true, latency_ms: 10 },
      { at: '2026-01-01T00:00:02Z', ok: false, latency_ms: null },
      { at: '2026-01-01T00:00:01Z', ok: true, latency_ms: 40 },
    ]);
    expect(svg.match(/class="fail"/g)).toHaveLength(1);
    expect(svg).toMatch(/<polyline points="2\.0,\S+ 158\.0,\S+" class="lat"\/>/);
    expect(svg).toContain('3 checks since 2026-01-01T00:00:01Z: 1 failed, mean latency 25 ms, max 40 ms');
    expect(checkChart([])).toContain('no checks yet');
  });
  it('drift says how far behind, and escapes what it shows', () => {
    const m = 'a'.repeat(40);
    expect(driftText('behind', 'b'.repeat(40), m, { behind: 3, ahead: 0 })).toBe('<code>bbbbbbb</code> · 3 commits behind <code>aaaaaaa</code>');
    expect(driftText('unknown', '<script>', m, null)).toContain('&lt;script');
    expect(driftText('equal', 'c'.repeat(40), m, null, false)).toContain('last reported (not answering now)');
  });
});

describe('StoreWatch', () => {
  it('reports the topics another writer changed and each new check once', () => {
    const file = path.join(tmp(), 'master.db');
    const writer = openStore(file);
    const reader = openStore(file);
    const watch = new StoreWatch(reader.db, 's');
    const checks: string[] = [];
    watch.onChecks((c) => checks.push(...c.map((x) => `${x.slave}:${x.ok}:${x.latency_ms}`)));
    expect(watch.poll()).toEqual([]);
    writer.requests.create({ type: 'PAYMENT', title: 'x' });
    expect(watch.poll().sort()).toEqual(['events', 'requests']);
    writer.slaves.addCheck('s', 'a', { ok: true, latencyMs: 12, commit: null, error: null });
    writer.slaves.addCheck('other', 'b', { ok: true, latencyMs: 5, commit: null, error: null });
    writer.slaves.patch('s', 'a', { state: 'healthy' });
    expect(watch.poll().sort()).toEqual(['checks', 'slaves']);
    expect(checks).toEqual(['a:true:12']);
    writer.slaves.patch('s', 'a', { last_check: new Date().toISOString() });
    expect(watch.poll()).toEqual([]);
    writer.close();
    reader.close();
  });

  it('reports a rollout of its stack starting, a member moving and the rollout pausing, not another stack\'s', () => {
    const file = path.join(tmp(), 'master.db');
    const writer = openStore(file);
    const reader = openStore(file);
    const watch = new StoreWatch(reader.db, 's');
    const policy = RolloutPolicySchema.parse({});
    const r = writer.rollouts.create('s', 'c'.repeat(40), policy, [{ slave: 'a', stage: 0, from_commit: null }]);
    expect(watch.poll()).toEqual(['rollouts']);
    writer.rollouts.setMember(r.id, 'a', 'updating');
    expect(watch.poll()).toEqual(['rollouts']);
    expect(writer.rollouts.transition(r.id, ['running'], 'paused')).toBe(true);
    expect(watch.poll()).toEqual(['rollouts']);
    writer.rollouts.create('other', 'd'.repeat(40), policy, [{ slave: 'b', stage: 0, from_commit: null }]);
    expect(watch.poll()).toEqual([]);
    writer.close();
    reader.close();
  });
});

describe('rollout panel', () => {
  const base = (over: Partial<Rollout>): Rollout => ({
    id: 7, stack: 's', commit: 'c'.repeat(40), status: 'running', stage: 1, policy: RolloutPolicySchema.parse({}), failures: 0, request_id: null,
    created_at: new Date().toISOString(), updated_at: new Date().toISOString(),
    members: [
      { slave: 'a', stage: 0, status: 'passed', from_commit: 'a'.repeat(40), gate_since: null, healthy_for_seconds: null, error: null },
      { slave: 'b<x>', stage: 1, status: 'gate', from_commit: 'a'.repeat(40), gate_since: null, healthy_for_seconds: null, error: null },
      { slave: 'c', stage: 1, status: 'rolled_back', from_commit: 'a'.repeat(40), gate_since: null, healthy_for_seconds: null, error: 'the deploy failed: <script>' },
      { slave: 'd', stage: 2, status: 'pending', from_commit: 'a'.repeat(40), gate_since: null, healthy_for_seconds: null, error: null },
    ],
    ...over,
  });
  const actions = (html: string) => [...html.matchAll(/data-rollout-action="(\w+)"/g)].map((m) => m[1]);

  it('shows the stage, each group of slaves, escaped names and errors, and only the moves its status allows', () => {
    const html = rolloutPanel(rolloutView(base({})), 'tok');
    expect(html).toContain('stage 2/3');
    expect(html).toContain('<span data-group="done">done a</span>');
    expect(html).toContain('<span data-group="updating">updating b&lt;x&gt;</span>');
    expect(html).toContain('<span data-group="rolled_back">rolled back c</span>');
    expect(html).toContain('the deploy failed: &lt;script&gt;');
    expect(html).not.toContain('<script>');
    expect(html).toContain('name="_csrf" value="tok"');
    expect(actions(html)).toEqual(['pause', 'abort']);
    expect(actions(rolloutPanel(rolloutView(base({ status: 'paused' })), 't'))).toEqual(['resume', 'abort']);
    expect(actions(rolloutPanel(rolloutView(base({ status: 'rejected' })), 't'))).toEqual(['abort']);
    const halted = rolloutPanel(rolloutView(base({ status: 'halted', request_id: 'req-0009' })), 't');
    expect(actions(halted)).toEqual(['abort']);
    expect(halted).toContain('<a href="/requests#req-0009">req-0009</a>');
  });

  it('a finished rollout is one line without buttons; no rollout, nothing', () => {
    const done = rolloutPanel(rolloutView(base({ status: 'done' })), 't');
    expect(done).toMatch(/^<p [^>]*id="rollout"[^>]*data-status="done"/);
    expect(done).toContain('1 updated');
    expect(actions(done)).toEqual([]);
    expect(rolloutPanel(null, 't')).toBe('');
  });
});
