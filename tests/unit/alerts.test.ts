/**
 * Alerts as typed data (core/alerts.ts) through a real outbox: every kind round-trips, an old or
 * foreign row is set aside without stopping delivery, and `recent()` lists what the dashboard shows.
 */
import pino from 'pino';
import { AlertSchema, ALERT_KINDS, type Alert } from '../../core/alerts';
import type { Store } from '../../master/store';
import { useTempStore } from '../support/temp-store';
import { AlertDispatcher } from '../../master/notify/dispatcher';
import { alertHeadline } from '../../master/notify/headline';
import { formatAlert } from '../../master/telegram/format';
import type { Notifier } from '../../master/notify/notifier';
import { rebootSafetyAlert } from '../../master/daemon/check-alerts';
import { emptyRecord, type SlaveRecord } from '../../master/store/slaves';
import type { SlaveConfig } from '../../core/stack-config';

const M = 'a'.repeat(40);
const S = 'b'.repeat(40);

describe('alerts', () => {
  const temp = useTempStore();
  let store: Store;
  beforeEach(() => { store = temp(); });

  it('is one union: each kind has its own fields, a wrong field is refused, update_started is gone', () => {
    expect(ALERT_KINDS).not.toContain('update_started');
    expect(ALERT_KINDS).toEqual(expect.arrayContaining(['version_mismatch', 'slave_dead', 'recovery_failed', 'human_request', 'master_version_changed']));
    expect(AlertSchema.safeParse({ kind: 'update_started', slave: 'x', created_at: 'now', data: {} }).success).toBe(false);
    expect(AlertSchema.safeParse({ kind: 'version_mismatch', slave: 'x', created_at: 'now', data: { master_commit: M, slave_commit: S, drift: 'sideways' } }).success).toBe(false);
    expect(() => store.outbox.enqueue({ kind: 'master_version_changed', slave: null, data: { master_commit: M } as never })).toThrow(/previous_commit/);
    const ok = AlertSchema.parse({ kind: 'recovery_failed', slave: 'x', created_at: 'now', data: { error_kind: 'auth' } });
    expect(ok.kind === 'recovery_failed' && ok.data).toMatchObject({ error_kind: 'auth', steps: [], attempts: [], strategies: [], error_tail: '' });
  });

  it('every kind has a headline and a Telegram message', () => {
    const samples: Alert[] = [
      { kind: 'version_mismatch', slave: 'pc', created_at: 'x', data: { master_commit: M, slave_commit: S, drift: 'behind', auto_update: 'approve', resend: false } },
      { kind: 'slave_dead', slave: 'pc', created_at: 'x', data: { error_tail: 'ECONNREFUSED', resend: true } },
      { kind: 'slave_recovered', slave: 'pc', created_at: 'x', data: { state: 'healthy' } },
      { kind: 'update_done', slave: 'pc', created_at: 'x', data: { slave_commit: M } },
      { kind: 'update_failed', slave: 'pc', created_at: 'x', data: { error_tail: 'Permission denied (publickey)', error_kind: 'auth', attempts: [], request_id: 'req-0007' } },
      { kind: 'recovery_failed', slave: 'pc', created_at: 'x', data: { error_tail: 'e', error_kind: 'no_ssh_key', attempts: [], strategies: [], steps: [{ action: 'restart', ok: false, at: 'x', error: 'deadline exceeded', error_kind: null }] } },
      { kind: 'provisioning_failed', slave: 'pc', created_at: 'x', data: { error_tail: 'e', attempts: [], strategies: ['venv'], steps: [] } },
      { kind: 'human_request', slave: null, created_at: 'x', data: { request_id: 'req-0001', request_type: 'PAYMENT', request_status: 'PENDING', priority: 'low', title: 'Buy', description: '', estimated_cost: 3 } },
      { kind: 'request_changed', slave: null, created_at: 'x', data: { request_id: 'req-0001', request_type: 'PAYMENT', request_status: 'REJECTED', priority: 'low', title: 'Buy', note: 'no' } },
      { kind: 'master_version_changed', slave: null, created_at: 'x', data: { master_commit: M, previous_commit: S } },
      { kind: 'not_reboot_safe', slave: 'pc', created_at: 'x', data: { supervisor: 'setsid', strategy: 'venv', endpoint: '10.0.0.5:7600' } },
      { kind: 'budget_threshold', slave: null, created_at: 'x', data: { request_type: 'PAYMENT', month: '2026-11', threshold: 80, spent: 85, budget: 100 } },
      { kind: 'daily_summary', slave: null, created_at: 'x', data: { day: '2026-11-30', since: '2026-11-29T09:00:00.000Z', auto_approved: [], pending: [], spend: { month: '2026-11', lines: [], total: 0 } } },
      { kind: 'rollout_halted', slave: null, created_at: 'x', data: { commit: M, stage: 0, untouched: ['b', 'c'], request_id: 'req-0002', failed: [{ slave: 'a', error: 'the deploy failed', rolled_back_to: S, rollback_ok: true }] } },
      { kind: 'rollout_done', slave: null, created_at: 'x', data: { commit: M, slaves: ['a', 'b'], seconds: 42 } },
      { kind: 'agent_impersonation', slave: 'pc', created_at: 'x', data: { endpoint: '10.0.0.5:7600', expected: 'AA:BB', presented: 'CC:DD' } },
    ];
    expect(samples.map((a) => a.kind).sort()).toEqual([...ALERT_KINDS].sort());
    for (const a of samples) {
      expect(alertHeadline(a).length).toBeGreaterThan(5);
      expect(formatAlert(a).text.length).toBeGreaterThan(10);
    }
    expect(formatAlert(samples[0]).text).toContain('an update request was filed');
    expect(formatAlert(samples[1]).text).toContain('(reminder)');
    expect(formatAlert(samples[4]).text).toMatch(/authorized_keys/);
    expect(formatAlert(samples[4]).text).toContain('req-0007');
    expect(formatAlert(samples[5]).text).toContain('D8_SSH_KEY_PATH');
    expect(formatAlert(samples[5]).text).toContain('restart: failed — deadline exceeded');
    expect(formatAlert(samples[7]).text).toContain('Estimated cost: 3');
    expect(formatAlert(samples[8]).text).toContain('Request req-0001 is now REJECTED: Buy');
    expect(alertHeadline(samples[10])).toBe('pc will not come back after a reboot: its agent runs under setsid only');
    expect(formatAlert(samples[10]).text).toMatch(/^⚠️ pc will not come back after a reboot\nIts agent runs under setsid only \(strategy venv\) on 10\.0\.0\.5:7600: .*\n.*install cron on the host, then \/retry pc redeploys\./);
  });

  it('an unreadable outbox row (an older master\'s) is logged and set aside; the alerts behind it are delivered', async () => {
    store.outbox.enqueue({ kind: 'slave_dead', slave: 'first', data: {} });
    store.db.prepare("INSERT INTO alerts_outbox (created_at, kind, slave, payload, next_attempt_at) VALUES (?, 'update_started', 'old', ?, ?)")
      .run(new Date().toISOString(), JSON.stringify({ kind: 'update_started', slave: 'old', title: 'Updating old', text: '', data: {}, created_at: 'x' }), new Date(0).toISOString());
    store.db.prepare("INSERT INTO alerts_outbox (created_at, kind, slave, payload, next_attempt_at) VALUES (?, 'slave_dead', 'garbled', '{not json', ?)")
      .run(new Date().toISOString(), new Date(0).toISOString());
    store.outbox.enqueue({ kind: 'slave_recovered', slave: 'last', data: {} });
    const got: Alert[] = [];
    const notifier: Notifier = { name: 'rec', send: async (a) => { got.push(a); } };
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => { lines.push(JSON.parse(l)); } });
    const d = new AlertDispatcher(store.outbox, notifier, logger, { pollMs: 20 });
    d.start();
    const deadline = Date.now() + 10_000;
    while (store.outbox.pendingCount() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await d.stop();
    expect(got.map((a) => a.slave)).toEqual(['first', 'last']);
    const skipped = lines.filter((l) => String(l.msg).includes('not a readable alert'));
    expect(skipped).toHaveLength(2);
    expect(String(skipped[0].err)).toMatch(/kind/);
    expect(String(skipped[1].err)).toMatch(/not JSON/);
    expect(store.outbox.sent().map((a) => a.slave)).toEqual(['first', 'last']);
  });

  it('recent(): delivered and queued alerts, typed, oldest first, filtered by slave and kind', async () => {
    store.outbox.enqueue({ kind: 'slave_dead', slave: 'a', data: { error_tail: 'x' } });
    store.outbox.enqueue({ kind: 'slave_dead', slave: 'b', data: {} });
    store.outbox.enqueue({ kind: 'slave_recovered', slave: 'a', data: {} });
    const head = store.outbox.leaseHead('me', 1000)!;
    store.outbox.markDelivered(head.id, 'log');
    const all = store.outbox.recent();
    expect(all.map((r) => `${r.status}:${r.alert.kind}:${r.alert.slave}`)).toEqual(['sent:slave_dead:a', 'queued:slave_dead:b', 'queued:slave_recovered:a']);
    expect(all[0]).toMatchObject({ notifier: 'log', sent_at: expect.any(String) });
    expect(store.outbox.recent({ slave: 'a' }).map((r) => r.alert.kind)).toEqual(['slave_dead', 'slave_recovered']);
    expect(store.outbox.recent({ kinds: ['slave_recovered'] })).toHaveLength(1);
    expect(store.outbox.recent({ limit: 1 }).map((r) => r.alert.kind)).toEqual(['slave_recovered']);
  });
});

describe('the not-reboot-safe warning is due on the transition only', () => {
  const slave = { name: 'pc', agentHost: '10.0.0.5', agentPort: 7600 } as SlaveConfig;
  const rec = (supervisor: string | null, reboot_safe: boolean | null): SlaveRecord => ({ ...emptyRecord('prod', 'pc'), supervisor, reboot_safe, strategy: 'venv' });
  it.each([
    ['unknown -> setsid', rec(null, null), rec('setsid', false), true],
    ['reboot-safe -> setsid', rec('user-unit', true), rec('setsid', false), true],
    ['setsid -> setsid (next sweep, or back from dead)', rec('setsid', false), rec('setsid', false), false],
    ['unknown -> cron', rec(null, null), rec('cron', true), false],
    ['setsid -> system-unit', rec('setsid', false), rec('system-unit', true), false],
  ] as const)('%s', (_what, prev, next, due) => {
    const a = rebootSafetyAlert('prod', slave, next, prev);
    if (!due) expect(a).toBeNull();
    else expect(AlertSchema.parse({ ...a, created_at: 'x' })).toMatchObject({ kind: 'not_reboot_safe', slave: 'pc', data: { supervisor: 'setsid', strategy: 'venv', endpoint: '10.0.0.5:7600' } });
  });
});
