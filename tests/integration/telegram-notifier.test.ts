/**
 * TelegramNotifier through the real outbox and dispatcher, with the real telegraf client talking to
 * the Bot API stand-in: messages per alert kind, Telegram down (refused, then 502) and back up with
 * every alert delivered in order and none twice, a 429 retry_after honoured, several chats, secrets.
 */
import path from 'path';
import { Telegram } from 'telegraf';
import { TelegramStandIn } from '../support/telegram-standin';
import { openStore, type Store } from '../../master/store';
import { AlertDispatcher } from '../../master/notify/dispatcher';
import { TelegramNotifier } from '../../master/telegram/notifier';
import { Redactor } from '../../core/redact';
import { memoryLogger, tmpDir, until } from './telegram-helpers';

const CHAT = 4242;
const OTHER_CHAT = 5151;
const AGENT_TOKEN = 'agent-token-0123456789-abcdefghij-KLMNOP';

interface Rig { store: Store; dispatcher: AlertDispatcher; notifier: TelegramNotifier; logs: ReturnType<typeof memoryLogger> }

describe('TelegramNotifier through the outbox', () => {
  const standin = new TelegramStandIn();
  const rigs: Rig[] = [];

  beforeAll(async () => {
    await standin.start();
    standin.addChat(CHAT);
    standin.addChat(OTHER_CHAT);
  });
  afterAll(async () => {
    for (const r of rigs) { await r.dispatcher.stop(); r.store.close(); }
    await standin.stop();
  });

  function rig(chatIds: number[], dir = tmpDir('tg-notifier')): Rig {
    const store = openStore(path.join(dir, 'master.db'), [AGENT_TOKEN]);
    const logs = memoryLogger('notifier-test', [standin.token]);
    const notifier = new TelegramNotifier({
      telegram: new Telegram(standin.token, { apiRoot: standin.apiRoot }),
      chatIds,
      logger: logs.logger,
      redactor: new Redactor([standin.token, AGENT_TOKEN]),
      getRequest: (id) => store.requests.get(id),
    });
    const dispatcher = new AlertDispatcher(store.outbox, notifier, logs.logger, { pollMs: 100, backoff: { baseMs: 200, maxMs: 1500 } });
    const r = { store, dispatcher, notifier, logs };
    rigs.push(r);
    return r;
  }

  const textsTo = (chat: number, marker: RegExp) => standin.sent(chat).filter((m) => marker.test(m.text)).map((m) => m.text);

  test('every alert kind becomes a readable message; a new request carries Approve / Reject buttons', async () => {
    const { store, dispatcher } = rig([CHAT]);
    dispatcher.start();
    const master = 'a'.repeat(40);
    const slave = 'b'.repeat(40);
    store.outbox.enqueue({ kind: 'version_mismatch', stack: 'dev', slave: 'desk-k1', data: { master_commit: master, slave_commit: slave, drift: 'behind' } });
    store.outbox.enqueue({ kind: 'slave_dead', stack: 'dev', slave: 'desk-k2', data: { previous_state: 'pending', error_tail: 'connect ECONNREFUSED 127.0.0.1:7600' } });
    store.outbox.enqueue({ kind: 'slave_recovered', stack: 'dev', slave: 'desk-k3', data: { previous_state: 'dead', state: 'healthy', slave_commit: master } });
    store.outbox.enqueue({ kind: 'update_done', stack: 'dev', slave: 'desk-k4', data: { slave_commit: master, strategy: 'venv' } });
    store.outbox.enqueue({ kind: 'update_failed', stack: 'dev', slave: 'desk-k5', data: { error_tail: 'pip failed\nexit 1', build_log_path: '/tmp/logs/build-k5.json' } });
    store.outbox.enqueue({
      kind: 'provisioning_failed', stack: 'dev', slave: 'desk-k6',
      data: {
        strategies: ['docker', 'venv', 'native'], build_log_path: '/tmp/logs/build-k6.json',
        attempts: [
          { strategy: 'docker', attempt: 1, ok: false, exit_code: 127, stderr_tail: 'docker: command not found', seconds: 0.1 },
          { strategy: 'venv', attempt: 1, ok: false, exit_code: 1, stderr_tail: 'No module named venv', seconds: 0.2 },
          { strategy: 'native', attempt: 1, ok: false, exit_code: 1, stderr_tail: `pip: permission denied (D8_AGENT_TOKEN=${AGENT_TOKEN})`, seconds: 0.3 },
        ],
      },
    });
    const req = store.requests.create({ type: 'INFRASTRUCTURE', title: 'desk-k7 cannot be provisioned', description: 'all strategies failed', priority: 'high', created_by: 'master' });

    const msgs = await standin.waitFor(() => { const s = standin.sent(CHAT); return s.length >= 7 && s; }, 30000, '7 messages');
    const [mismatch, dead, recovered, done, failed, prov, request] = msgs.slice(-7);
    expect(mismatch.text).toContain('desk-k1');
    expect(mismatch.text).toContain(`Master: ${master.slice(0, 7)}`);
    expect(mismatch.text).toContain(`Slave: ${slave.slice(0, 7)}`);
    expect(mismatch.text).toContain('Drift: behind');
    expect(mismatch.text).not.toContain(master); // short commits only
    expect(dead.text).toMatch(/desk-k2 is dead/);
    expect(dead.text).toContain('ECONNREFUSED');
    expect(recovered.text).toMatch(/desk-k3 recovered/);
    expect(done.text).toMatch(/desk-k4 updated/);
    expect(done.text).toContain('strategy venv');
    expect(failed.text).toMatch(/Update of desk-k5 failed/);
    expect(failed.text).toContain('/tmp/logs/build-k5.json');
    expect(prov.text).toMatch(/Provisioning of desk-k6 failed on every strategy/);
    expect(prov.text).toContain('Strategies tried: docker, venv, native');
    expect(prov.text).toContain('docker: command not found');
    expect(prov.text).toContain('No module named venv');
    expect(prov.text).toContain('/tmp/logs/build-k6.json');
    expect(prov.text).not.toContain(AGENT_TOKEN);
    expect(request.text).toContain(req.id);
    expect(request.text).toContain('INFRASTRUCTURE');
    expect(request.text).toContain('priority high');
    expect(request.reply_markup?.inline_keyboard.flat().map((b) => b.callback_data)).toEqual([`req:approve:${req.id}`, `req:reject:${req.id}`]);
    for (const m of msgs) expect(m.text).not.toContain(standin.token);
    await until(() => store.outbox.pendingCount() === 0, 10000, 'an empty outbox');
  });

  test.each(['refuse', '502'] as const)('Telegram down (%s) then up: every alert arrives afterwards, in order, none twice', async (mode) => {
    const { store, dispatcher } = rig([CHAT]);
    dispatcher.start();
    const tag = `down-${mode}`;
    store.outbox.enqueue({ kind: 'slave_dead', slave: `${tag}-0`, data: {} });
    await standin.waitForMessage(CHAT, new RegExp(`${tag}-0 is dead`));

    await standin.goDown(mode);
    for (let i = 1; i <= 6; i++) store.outbox.enqueue({ kind: 'slave_dead', slave: `${tag}-${i}`, data: {} });
    // The head is retried (with backoff) and stays in the outbox while Telegram is away.
    await until(() => {
      const r = store.db.prepare('SELECT attempts FROM alerts_outbox ORDER BY id LIMIT 1').get() as { attempts: number } | undefined;
      return r && r.attempts >= 3;
    }, 30000, 'three failed attempts');
    expect(store.outbox.pendingCount()).toBe(6);
    await standin.comeUp();

    await until(() => store.outbox.pendingCount() === 0, 30000, 'the outbox to drain');
    const got = textsTo(CHAT, new RegExp(`${tag}-\\d is dead`)).map((t) => /(\S+) is dead/.exec(t)![1]);
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `${tag}-${i}`));
  });

  test('a 429 is honoured: the alert is retried only after retry_after, once', async () => {
    const { store, dispatcher, logs } = rig([CHAT]);
    dispatcher.start();
    standin.rateLimitNext(1, 2, { methods: ['sendMessage'] });
    const before = standin.callsOf('sendMessage').length;
    store.outbox.enqueue({ kind: 'slave_dead', slave: 'rate-limited', data: {} });
    store.outbox.enqueue({ kind: 'slave_recovered', slave: 'rate-limited', data: {} });
    await standin.waitForMessage(CHAT, /rate-limited recovered/);
    const calls = standin.callsOf('sendMessage').slice(before);
    expect(calls.map((c) => c.status)).toEqual([429, 200, 200]);
    expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(2000);
    expect(textsTo(CHAT, /rate-limited/)).toEqual([expect.stringMatching(/rate-limited is dead/), expect.stringMatching(/rate-limited recovered/)]);
    expect(logs.raw()).toMatch(/retry_in_ms":2000/);
  });

  test('several chats: a chat rate-limited mid-way does not make the others receive the alert twice', async () => {
    const { store, dispatcher } = rig([CHAT, OTHER_CHAT]);
    dispatcher.start();
    standin.rateLimitNext(1, 1, { methods: ['sendMessage'], chatId: OTHER_CHAT });
    store.outbox.enqueue({ kind: 'slave_dead', slave: 'two-chats', data: {} });
    await standin.waitForMessage(OTHER_CHAT, /two-chats is dead/);
    await until(() => store.outbox.pendingCount() === 0, 10000, 'the outbox to drain');
    expect(textsTo(CHAT, /two-chats/)).toHaveLength(1);
    expect(textsTo(OTHER_CHAT, /two-chats/)).toHaveLength(1);
  });

  test('a chat Telegram does not know is skipped and logged; the alert still reaches the others', async () => {
    const unknownChat = 999001;
    const { store, dispatcher, logs } = rig([unknownChat, CHAT]);
    dispatcher.start();
    store.outbox.enqueue({ kind: 'slave_dead', slave: 'bad-chat', data: {} });
    await standin.waitForMessage(CHAT, /bad-chat is dead/);
    await until(() => store.outbox.pendingCount() === 0, 10000, 'the outbox to drain');
    expect(logs.raw()).toContain(`Telegram refuses chat ${unknownChat}`);
  });

  test('the outbox survives a restart while Telegram is down and is delivered by the next process', async () => {
    const dir = tmpDir('tg-restart');
    const first = rig([CHAT], dir);
    first.dispatcher.start();
    await standin.goDown('refuse');
    for (let i = 1; i <= 3; i++) first.store.outbox.enqueue({ kind: 'slave_dead', slave: `restart-${i}`, data: {} });
    await until(() => {
      const r = first.store.db.prepare('SELECT attempts FROM alerts_outbox ORDER BY id LIMIT 1').get() as { attempts: number } | undefined;
      return r && r.attempts >= 1;
    }, 20000, 'a failed attempt');
    await first.dispatcher.stop();
    first.store.close();
    rigs.splice(rigs.indexOf(first), 1);

    await standin.comeUp();
    const second = rig([CHAT], dir);
    expect(second.store.outbox.pendingCount()).toBe(3);
    second.dispatcher.start();
    await until(() => second.store.outbox.pendingCount() === 0, 30000, 'the outbox to drain');
    expect(textsTo(CHAT, /restart-\d is dead/).map((t) => /(restart-\d)/.exec(t)![1])).toEqual(['restart-1', 'restart-2', 'restart-3']);
  });

  test('Telegram accepts a message but the answer is lost: resent once, then never again (at most one duplicate)', async () => {
    const { store, dispatcher, logs } = rig([CHAT]);
    dispatcher.start();
    // Once: the alert arrives twice (the retry cannot know the first copy arrived), then the outbox moves on.
    standin.dropResponsesOfNext(1);
    store.outbox.enqueue({ kind: 'slave_dead', stack: 'dev', slave: 'lost-1', data: { previous_state: 'pending', error_tail: 'x' } });
    store.outbox.enqueue({ kind: 'slave_dead', stack: 'dev', slave: 'lost-2', data: { previous_state: 'pending', error_tail: 'x' } });
    await until(() => store.outbox.pendingCount() === 0, 30000, 'the outbox to drain');
    expect(textsTo(CHAT, /lost-1 is dead/)).toHaveLength(2);
    expect(textsTo(CHAT, /lost-2 is dead/)).toHaveLength(1);

    // Every answer lost: the alert is still sent at most twice, and the outbox is not jammed behind it.
    standin.dropResponsesOfNext(1000);
    store.outbox.enqueue({ kind: 'slave_dead', stack: 'dev', slave: 'lost-3', data: { previous_state: 'pending', error_tail: 'x' } });
    await until(() => store.outbox.pendingCount() === 0, 30000, 'the outbox to drain');
    await new Promise((r) => setTimeout(r, 2000));
    expect(textsTo(CHAT, /lost-3 is dead/)).toHaveLength(2);
    expect(logs.raw()).toMatch(/answer was lost twice/);
    standin.dropResponsesOfNext(0);
    store.outbox.enqueue({ kind: 'slave_dead', stack: 'dev', slave: 'lost-4', data: { previous_state: 'pending', error_tail: 'x' } });
    await until(() => store.outbox.pendingCount() === 0, 30000, 'the outbox to drain');
    expect(textsTo(CHAT, /lost-4 is dead/)).toHaveLength(1);
  });
});
