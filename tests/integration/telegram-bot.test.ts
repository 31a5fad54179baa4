/**
 * The bot with the real telegraf client (long polling) against the Bot API stand-in, on top of the
 * master's real store, request service and FleetControl (no daemon runs here: /retry and /update
 * report the control's own answer; tests/integration/telegram-daemon.test.ts covers the daemon).
 */
import path from 'path';
import { Telegram } from 'telegraf';
import { TelegramStandIn, type SentMessage } from '../support/telegram-standin';
import { openStore, type Store } from '../../master/store';
import { FleetControl } from '../../master/control';
import { AlertDispatcher } from '../../master/notify/dispatcher';
import { TelegramBot } from '../../master/telegram/bot';
import { TelegramNotifier } from '../../master/telegram/notifier';
import { servicesFromControl } from '../../master/telegram/fleet-adapter';
import { telegramSettings } from '../../master/telegram/settings';
import { botCommands } from '../../master/telegram/menu';
import { resolveFleetConfig, type FleetConfig } from '../../core/stack-config';
import { Redactor } from '../../core/redact';
import { repoRoot } from '../../core/paths';
import { memoryLogger, tmpDir, until } from './telegram-helpers';

const CHAT = 31337;
const STRANGER = 666;

describe('Telegram bot (telegraf against the stand-in)', () => {
  const standin = new TelegramStandIn();
  let store: Store;
  let config: FleetConfig;
  let bot: TelegramBot;
  let dispatcher: AlertDispatcher;
  const logs = memoryLogger('bot-test');

  beforeAll(async () => {
    await standin.start();
    standin.addChat(CHAT);
    standin.addChat(STRANGER);
    store = openStore(path.join(tmpDir('tg-bot'), 'master.db'));
    config = resolveFleetConfig({
      slaves: [{ name: 'desk', host: 'local', agentPort: 47601 }, { name: 'laptop', host: 'local', agentPort: 47602 }],
      telegramToken: standin.token,
      telegramChatIds: String(CHAT),
    }, { stack: 'bottest', env: {} });
    const settings = telegramSettings(config, { TELEGRAM_API_ROOT: standin.apiRoot })!;
    const redactor = new Redactor([standin.token]);
    const control = new FleetControl({ config, store, repoDir: repoRoot(), commandTimeoutMs: 5000 });
    const notifier = new TelegramNotifier({
      telegram: new Telegram(settings.token, { apiRoot: settings.apiRoot }),
      chatIds: settings.chatIds, logger: logs.logger, redactor, settings,
      getRequest: (id) => store.requests.get(id),
    });
    dispatcher = new AlertDispatcher(store.outbox, notifier, logs.logger, { pollMs: 100, backoff: { baseMs: 200, maxMs: 1000 } });
    dispatcher.start();
    bot = new TelegramBot({ settings, services: servicesFromControl(control, config), logger: logs.logger, redactor });
    bot.start();
    await standin.waitFor(() => standin.callsOf('getUpdates').length > 0, 30000, 'the bot to poll');
  });

  afterAll(async () => {
    await bot?.stop();
    await dispatcher?.stop();
    store?.close();
    await standin.stop();
  });

  /** Sends `text` from `chat` and waits for the first new bot message in that chat matching `match`. */
  async function ask(text: string, match: RegExp, chat = CHAT): Promise<SentMessage> {
    const before = standin.sent(chat).length;
    standin.injectMessage(chat, text);
    return standin.waitFor(() => standin.sent(chat).slice(before).find((m) => match.test(m.text)), 30000, `an answer to ${text} matching ${match}`);
  }

  async function requestMessage(id: string): Promise<SentMessage> {
    return standin.waitFor(() => standin.sent(CHAT).find((m) => m.text.includes(id) && !!m.reply_markup), 30000, `the message of ${id}`);
  }

  test('the command menu is registered with setMyCommands', async () => {
    await standin.waitFor(() => standin.commands.length > 0, 30000, 'setMyCommands');
    expect(standin.commands).toEqual(botCommands());
    expect(standin.commands.map((c) => c.command)).toEqual(['status', 'retry', 'update', 'rollout', 'solicitudes', 'aprobar', 'rechazar', 'posponer', 'completar', 'gastos', 'help']);
  });

  test('/help lists every command', async () => {
    const m = await ask('/help', /Commands:/);
    for (const c of ['/status', '/retry <slave>', '/update <slave>', '/solicitudes', '/aprobar <id>', '/rechazar <id> [motivo]', '/posponer <id>', '/completar <id> [nota]']) {
      expect(m.text).toContain(c);
    }
  });

  test('/status lists the slaves with their state and commit', async () => {
    store.slaves.put({ ...store.slaves.getOrEmpty('bottest', 'laptop'), state: 'version_mismatch', drift: 'behind', commit: 'c'.repeat(40), strategy: 'venv', supervisor: 'setsid', reboot_safe: false });
    const m = await ask('/status', /Fleet bottest/);
    expect(m.text).toMatch(/desk: unknown/);
    expect(m.text).toMatch(/laptop: version mismatch \(behind\) · commit ccccccc · venv · setsid ⚠️ not reboot-safe/);
  });

  test('/rollout shows the latest rollout; /rollout pause|resume|abort moves it, refusing a move its status does not allow', async () => {
    expect((await ask('/rollout', /rollout/)).text).toContain('stack bottest has no rollout policy: add d8:rollout');
    const commit = 'd'.repeat(40);
    const r = store.rollouts.create('bottest', commit, { canary: 1, batchSize: 2, healthyForSeconds: 30, maxFailures: 1 },
      [{ slave: 'desk', stage: 0, from_commit: 'c'.repeat(40) }, { slave: 'laptop', stage: 1, from_commit: 'c'.repeat(40) }]);
    const shown = await ask('/rollout', /^rollout/);
    expect(shown.text).toContain(`rollout ${r.id} of ddddddd: running, stage 1/2 · pending desk, laptop`);
    expect(shown.text).toMatch(/desk\s+stage 0\s+pending\s+from ccccccc/);
    expect((await ask('/rollout pause', /paused|can be/)).text).toBe(`rollout ${r.id} of ddddddd paused: no new slave is updated until it is resumed`);
    expect(store.rollouts.get(r.id)!.status).toBe('paused');
    expect((await ask('/rollout pause', /can be/)).text).toBe(`rollout ${r.id} of ddddddd is paused: it can be paused only when running`);
    await ask('/rollout abort', /aborted/);
    expect(store.rollouts.get(r.id)!.status).toBe('aborted');
    expect((await ask('/rollout sideways', /Usage/)).text).toBe('Usage: /rollout, or /rollout pause|resume|abort');
  });

  test('an unauthorized chat gets a refusal, nothing else, and the attempt is logged', async () => {
    const before = store.requests.list().length;
    const refusal = await ask('/status', /Not allowed/, STRANGER);
    expect(refusal.text).toContain(String(STRANGER));
    standin.injectMessage(STRANGER, '/aprobar req-0001');
    await standin.waitFor(() => standin.sent(STRANGER).length >= 2, 30000, 'a second refusal');
    expect(standin.sent(STRANGER).every((m) => /Not allowed/.test(m.text))).toBe(true);
    expect(store.requests.list().length).toBe(before);
    const refused = logs.lines().filter((l) => l.msg === 'Telegram: refused an update from a chat that is not allowed');
    expect(refused.map((l) => l.chat_id)).toEqual([STRANGER, STRANGER]);
    expect(refused[1].tried).toBe('/aprobar req-0001');

    // A button pressed in a chat that is not allowed (a message left from when it was) is refused too.
    const req = store.requests.create({ type: 'PAYMENT', title: 'stranger button', created_by: 'test' });
    const stale = await new Telegram(standin.token, { apiRoot: standin.apiRoot })
      .sendMessage(STRANGER, 'old request', { reply_markup: { inline_keyboard: [[{ text: 'ok', callback_data: `req:approve:${req.id}` }]] } });
    const answersBefore = standin.answers.length;
    standin.injectCallback(STRANGER, stale.message_id, `req:approve:${req.id}`);
    const answer = await standin.waitFor(() => standin.answers[answersBefore], 30000, 'the refusal of a button');
    expect(answer.text).toMatch(/Not allowed/);
    expect(answer.show_alert).toBe(true);
    expect(store.requests.get(req.id).status).toBe('PENDING');
  });

  test('/solicitudes, /aprobar, /completar with a note, /rechazar with a reason, /posponer', async () => {
    const a = store.requests.create({ type: 'PAYMENT', title: 'Buy domain d8-fleet.dev', estimated_cost: 12.99, created_by: 'test' });
    const b = store.requests.create({ type: 'DESIGN_DECISION', title: 'Pick a logo', created_by: 'test' });
    const c = store.requests.create({ type: 'API_ACCOUNT', title: 'Open a VPS account', created_by: 'test' });
    const alert = await requestMessage(a.id);
    expect(alert.text).toContain('Estimated cost: 12.99');

    const list = await ask('/solicitudes', /Open requests:/);
    for (const r of [a, b, c]) expect(list.text).toContain(r.id);

    const ok = await ask(`/aprobar ${a.id}`, new RegExp(`${a.id} approved`));
    expect(ok.text).toContain('Buy domain');
    expect(store.requests.get(a.id).status).toBe('APPROVED');

    await ask(`/completar ${a.id} bought it with the company card`, new RegExp(`${a.id} completed`));
    const done = store.requests.get(a.id);
    expect(done.status).toBe('COMPLETED');
    expect(done.notes).toContain('bought it with the company card');
    expect(done.notes).toContain(`chat ${CHAT}`);

    await ask(`/rechazar ${b.id} too expensive`, new RegExp(`${b.id} rejected`));
    expect(store.requests.get(b.id).status).toBe('REJECTED');
    expect(store.requests.get(b.id).notes).toContain('too expensive');

    await ask(`/posponer ${c.id}`, new RegExp(`${c.id} postponed`));
    expect(store.requests.get(c.id).status).toBe('POSTPONED');

    // Every change also reaches the chat through the outbox.
    await standin.waitForMessage(CHAT, new RegExp(`Request ${b.id} is now REJECTED`));
  });

  test('request commands explain bad input', async () => {
    const r = store.requests.create({ type: 'CONTENT_APPROVAL', title: 'Approve the post', created_by: 'test' });
    expect((await ask('/aprobar', /Usage: \/aprobar <id>/)).text).toContain('/solicitudes');
    expect((await ask('/aprobar banana', /not a request id/)).text).toContain('req-0001');
    await ask('/aprobar req-9999', /No request req-9999/);
    expect((await ask(`/completar ${r.id} early`, /cannot become COMPLETED/)).text).toContain('PENDING');
    await ask(`/rechazar ${r.id}`, new RegExp(`${r.id} rejected`));
    await ask(`/rechazar ${r.id}`, new RegExp(`${r.id} is already REJECTED`));
    await ask(`/aprobar ${r.id}`, /it is final/);
  });

  test('inline buttons approve and reject; the message keeps the decision and loses its buttons', async () => {
    const a = store.requests.create({ type: 'INFRASTRUCTURE', title: 'Reboot the router', priority: 'high', created_by: 'test' });
    const b = store.requests.create({ type: 'PAYMENT', title: 'Renew the certificate', created_by: 'test' });
    const ma = await requestMessage(a.id);
    const mb = await requestMessage(b.id);
    const answers = standin.answers.length;

    standin.injectCallback(CHAT, ma.message_id, `req:approve:${a.id}`);
    await until(() => store.requests.get(a.id).status === 'APPROVED', 30000, `${a.id} approved`);
    standin.injectCallback(CHAT, mb.message_id, `req:reject:${b.id}`);
    await until(() => store.requests.get(b.id).status === 'REJECTED', 30000, `${b.id} rejected`);

    await standin.waitFor(() => standin.answers.length >= answers + 2, 30000, 'two callback answers');
    expect(standin.answers.slice(answers).map((x) => x.text)).toEqual([`${a.id} approved`, `${b.id} rejected`]);
    const edited = await standin.waitFor(() => { const m = standin.sent(CHAT).find((x) => x.message_id === ma.message_id); return m && !m.reply_markup && m; }, 30000, 'the edit');
    expect(edited.text).toMatch(new RegExp(`${a.id} · INFRASTRUCTURE · APPROVED`));
    expect(store.requests.get(a.id).notes).toContain(`chat ${CHAT}`);
  });

  test('a button pressed after the request was decided elsewhere says so and changes nothing', async () => {
    const r = store.requests.create({ type: 'STRATEGIC_DECISION', title: 'Move to a new VPS', created_by: 'test' });
    const m = await requestMessage(r.id);
    store.requests.approve(r.id, 'from the CLI');
    standin.injectCallback(CHAT, m.message_id, `req:reject:${r.id}`, { stale: true });
    const answer = await standin.waitFor(() => standin.answers.find((x) => x.text?.includes('cannot become REJECTED')), 30000, 'the answer');
    expect(answer.text).toContain('APPROVED');
    expect(store.requests.get(r.id).status).toBe('APPROVED');
  });

  test('/retry and /update: unknown slave, missing argument, and the control\'s answer', async () => {
    expect((await ask('/retry nosuch', /No slave named "nosuch"/)).text).toContain('desk, laptop');
    await ask('/update', /Usage: \/update <slave>/);
    await ask('/retry desk', /Redeploying desk/);
    const outcome = await standin.waitForMessage(CHAT, /retry of desk failed/);
    expect(outcome.text).toMatch(/no master daemon runs for stack bottest/);
  });

  test('an unknown command points at /help; plain chatter and commands for other bots are ignored', async () => {
    await ask('/frobnicate now', /I do not know \/frobnicate/);
    const before = standin.sent(CHAT).length;
    standin.injectMessage(CHAT, 'hello bot');
    standin.injectMessage(CHAT, '/frobnicate@some_other_bot'); // in a group: meant for another bot
    await ask('/help', /Commands:/);
    expect(standin.sent(CHAT).slice(before).filter((m) => /hello|some_other_bot/i.test(m.text))).toHaveLength(0);
    await ask(`/frobnicate@${standin.bot.username}`, /I do not know \/frobnicate/);
  });

  test('a reply hit by 429 is sent after retry_after', async () => {
    standin.rateLimitNext(1, 1, { methods: ['sendMessage'], chatId: CHAT });
    const before = standin.callsOf('sendMessage').length;
    await ask('/help', /Commands:/);
    const calls = standin.callsOf('sendMessage').slice(before).filter((c) => String(c.params.chat_id) === String(CHAT));
    expect(calls[0].status).toBe(429);
    expect(calls[1].status).toBe(200);
    expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(1000);
  });

  test('the bot keeps working after Telegram was unreachable', async () => {
    await standin.goDown('refuse');
    await new Promise((r) => setTimeout(r, 1500));
    const before = standin.sent(CHAT).length;
    standin.injectMessage(CHAT, '/solicitudes'); // queued by "Telegram" while the bot cannot reach it
    await standin.comeUp();
    await standin.waitFor(() => standin.sent(CHAT).slice(before).find((m) => /Open requests:|No open requests/.test(m.text)), 60000, 'the answer after the outage');
  });
});
