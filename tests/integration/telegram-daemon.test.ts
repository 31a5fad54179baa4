/**
 * Telegram with the real daemon: `node bin/d8.js master` as a child process with TELEGRAM_TOKEN,
 * TELEGRAM_CHAT_ID and TELEGRAM_API_ROOT pointing at the Bot API stand-in, real agents on loopback
 * and the master tests' spawn deployer (it restarts the real agent instead of running install.sh).
 * Scenarios run in order against one daemon (then a restarted one).
 */
import fs from 'fs';
import path from 'path';
import { Fleet, freePort, waitFor, alive } from './master-support/fleet';
import { TelegramStandIn, type SentMessage } from '../support/telegram-standin';
import type { AgentHandle } from '../support/agent-process';
import { botCommands } from '../../master/telegram/menu';

jest.setTimeout(300_000);

const CHAT = 70007;

describe('Telegram through the master daemon (real processes)', () => {
  const fleet = new Fleet('tg');
  const standin = new TelegramStandIn();
  const agents: Record<string, AgentHandle> = {};
  let daemon: ReturnType<Fleet['daemon']>;
  // deadAfter 8: a killed agent stays `pending` long enough for /retry to reach it before the daemon's own recovery.
  const tuning = { deadAfter: 8 };
  const telegramEnv = () => ({ TELEGRAM_TOKEN: standin.token, TELEGRAM_CHAT_ID: String(CHAT), TELEGRAM_API_ROOT: standin.apiRoot });

  beforeAll(async () => {
    await standin.start();
    standin.addChat(CHAT);
    const specs = [
      { name: 'steady', port: await freePort() },
      { name: 'victim', port: await freePort() },
      { name: 'gated', port: await freePort(), autoUpdate: 'approve' as const },
    ];
    const c = fleet.initRepo(specs);
    const port = (n: string) => specs.find((s) => s.name === n)!.port;
    agents.steady = await fleet.agent('steady', port('steady'), c.main);
    agents.victim = await fleet.agent('victim', port('victim'), c.main);
    agents.gated = await fleet.agent('gated', port('gated'), c.base);
    daemon = fleet.daemon({ tuning, env: telegramEnv() });
  });
  afterAll(async () => {
    // D8_TEST_KEEP_LOGS=<dir>: keep the daemons' logs and what the bot sent, for a failing run.
    const keep = process.env.D8_TEST_KEEP_LOGS;
    if (keep) {
      fs.mkdirSync(keep, { recursive: true });
      for (const f of fs.readdirSync(fleet.root).filter((x) => x.endsWith('.log'))) fs.copyFileSync(path.join(fleet.root, f), path.join(keep, f));
      fs.writeFileSync(path.join(keep, 'telegram-sent.json'), JSON.stringify(standin.sent(), null, 2));
    }
    await fleet.cleanup();
    await standin.stop();
  });

  const texts = (re: RegExp): string[] => standin.sent(CHAT).map((m) => m.text).filter((t) => re.test(t));

  async function ask(text: string, match: RegExp, timeoutMs = 60_000): Promise<SentMessage> {
    const before = standin.sent(CHAT).length;
    standin.injectMessage(CHAT, text);
    return standin.waitFor(() => standin.sent(CHAT).slice(before).find((m) => match.test(m.text)), timeoutMs, `an answer to ${text} matching ${match}`);
  }

  async function killAgent(name: string): Promise<void> {
    const pid = Number(fs.readFileSync(path.join(fleet.agentsDir, `${name}.pid`), 'utf8'));
    process.kill(pid, 'SIGTERM');
    await waitFor(() => !alive(pid), 20_000, `${name} agent gone`);
  }

  it('registers its command menu, polls, and answers /status', async () => {
    await standin.waitFor(() => standin.commands.length === botCommands().length, 60_000, 'setMyCommands from the daemon');
    await waitFor(() => fleet.slave('steady')?.state === 'healthy', 60_000, 'steady healthy');
    const m = await ask('/status', /Fleet tg/);
    expect(m.text).toMatch(/steady: healthy · commit [0-9a-f]{7}/);
    expect(m.text).toContain(`master ${fleet.commits.main.slice(0, 7)}`);
  });

  it('an update approval carries buttons; Approve runs the update and the outcome is reported', async () => {
    const req = await waitFor(() => fleet.db().requests.list().find((r) => r.action?.slave === 'gated' && r.action.kind === 'update'), 60_000, 'the update request');
    const msg = await standin.waitFor(() => standin.sent(CHAT).find((m) => m.text.includes(req.id) && !!m.reply_markup), 60_000, 'the request message');
    expect(msg.text).toMatch(/Update gated from [0-9a-f]{7} to [0-9a-f]{7}\?/);
    standin.injectCallback(CHAT, msg.message_id, `req:approve:${req.id}`);
    await standin.waitFor(() => standin.answers.find((a) => a.text === `${req.id} approved`), 60_000, 'the button answer');
    await standin.waitForMessage(CHAT, /gated updated/, 120_000);
    const completed = await standin.waitForMessage(CHAT, new RegExp(`Request ${req.id} is now COMPLETED`), 120_000);
    expect(completed.text).toMatch(/Note: done: gated now reports/);
    expect(fleet.slave('gated')?.commit).toBe(fleet.commits.main);
  });

  it('/update and /retry run through the daemon and report the outcome', async () => {
    await ask('/update steady', /Updating steady/);
    const up = await standin.waitForMessage(CHAT, /update of steady done/, 120_000);
    expect(up.text).toContain(fleet.commits.main.slice(0, 7));

    await killAgent('victim');
    await ask('/retry victim', /Redeploying victim/);
    const r = await standin.waitForMessage(CHAT, /retry of victim (done|failed)/, 120_000);
    expect(r.text).toMatch(/retry of victim done/);
    await waitFor(() => fleet.slave('victim')?.state === 'healthy', 60_000, 'victim healthy');
  });

  it('Telegram down then up: every alert queued meanwhile arrives afterwards, in order, none twice', async () => {
    await standin.waitFor(() => fleet.db().outbox.pendingCount() === 0, 60_000, 'a drained outbox');
    await standin.goDown('refuse');
    const sentBefore = standin.sent(CHAT).length;
    for (const t of ['order-1', 'order-2', 'order-3']) {
      const r = await fleet.cli(['requests', 'create', '--type', 'PAYMENT', '--title', `pay ${t}`]);
      expect(r.code).toBe(0);
    }
    await killAgent('victim'); // dead, then recovered by the daemon: two more alerts
    await waitFor(() => fleet.alerts('victim').slice(-1)[0]?.kind === 'slave_recovered' && fleet.slave('victim')?.state === 'healthy', 120_000, 'victim dead and recovered');
    expect(standin.sent(CHAT).length).toBe(sentBefore); // nothing got through
    expect(fleet.db().outbox.pendingCount()).toBeGreaterThanOrEqual(5);
    await standin.comeUp();
    await waitFor(() => fleet.db().outbox.pendingCount() === 0, 120_000, 'the outbox drained after the outage');

    const after = standin.sent(CHAT).slice(sentBefore).map((m) => m.text);
    const pick = (re: RegExp) => after.map((t, i) => (re.test(t) ? i : -1)).filter((i) => i >= 0);
    const order = ['order-1', 'order-2', 'order-3'].map((t) => pick(new RegExp(`New request req-\\d+ · PAYMENT[\\s\\S]*pay ${t}`)));
    for (const o of order) expect(o).toHaveLength(1);
    expect(order[0][0]).toBeLessThan(order[1][0]);
    expect(order[1][0]).toBeLessThan(order[2][0]);
    const dead = pick(/victim is dead/);
    const recovered = pick(/victim recovered/);
    expect(dead).toHaveLength(1);
    expect(recovered).toHaveLength(1);
    expect(dead[0]).toBeLessThan(recovered[0]);
    // The messages arrive in exactly the order the alerts were queued.
    const queued = fleet.db().outbox.sent(1000).filter((a) => Date.parse(a.sent_at) >= 0);
    const ids = queued.map((a) => a.id);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
  });

  it('a master restart while Telegram is down resumes the outbox', async () => {
    await standin.goDown('refuse');
    const sentBefore = standin.sent(CHAT).length;
    for (const t of ['restart-1', 'restart-2']) await fleet.cli(['requests', 'create', '--type', 'API_ACCOUNT', '--title', `account ${t}`]);
    await waitFor(() => {
      const r = fleet.db().db.prepare('SELECT attempts FROM alerts_outbox ORDER BY id LIMIT 1').get() as { attempts: number } | undefined;
      return !!r && r.attempts >= 1;
    }, 60_000, 'a failed delivery attempt');
    expect(await fleet.stopDaemon(daemon.child)).toBe(0);
    expect(fleet.db().outbox.pendingCount()).toBeGreaterThanOrEqual(2);

    daemon = fleet.daemon({ tuning, env: telegramEnv(), logName: 'daemon-restarted.log' });
    await standin.comeUp();
    await waitFor(() => fleet.db().outbox.pendingCount() === 0, 120_000, 'the outbox drained by the new daemon');
    const after = standin.sent(CHAT).slice(sentBefore).map((m) => m.text);
    expect(after.filter((t) => /account restart-1/.test(t))).toHaveLength(1);
    expect(after.filter((t) => /account restart-2/.test(t))).toHaveLength(1);
    expect(after.findIndex((t) => /account restart-1/.test(t))).toBeLessThan(after.findIndex((t) => /account restart-2/.test(t)));
    // The new daemon's bot answers too.
    await ask('/solicitudes', /Open requests:/);
  });

  it('a 429 from Telegram is honoured (retry_after) by the daemon', async () => {
    standin.rateLimitNext(1, 3, { methods: ['sendMessage'], text: /rate limited one/ });
    await fleet.cli(['requests', 'create', '--type', 'PAYMENT', '--title', 'rate limited one']);
    await standin.waitForMessage(CHAT, /rate limited one/, 60_000);
    const calls = standin.callsOf('sendMessage').filter((c) => /rate limited one/.test(String(c.params.text)));
    expect(calls.map((c) => c.status)).toEqual([429, 200]);
    expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(3000);
    expect(texts(/rate limited one/)).toHaveLength(1);
  });

  it('never puts a secret in a message or in its log', async () => {
    for (const m of standin.sent(CHAT)) {
      expect(m.text).not.toContain(standin.token);
      expect(m.text).not.toContain(fleet.token);
    }
    expect(daemon.log()).not.toContain(standin.token);
    expect(daemon.log()).not.toContain(fleet.token);
  });
});

describe('the master without a Telegram token', () => {
  const fleet = new Fleet('notg');
  afterAll(() => fleet.cleanup());

  it('notifies through the log and says so once', async () => {
    fleet.initRepo([]);
    const d = fleet.daemon({ args: ['--once'] });
    const code = await new Promise<number | null>((resolve) => d.child.once('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    const said = d.log().split('\n').filter((l) => l.includes('no Telegram token configured'));
    expect(said).toHaveLength(1);
  });
});
