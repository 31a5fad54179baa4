/**
 * The bot: telegraf with long polling, composed from small command groups. Only the configured chats
 * get past the auth middleware. Starting never throws at the daemon: while Telegram is unreachable
 * the bot keeps trying with backoff (telegraf's own polling loop rides out outages once running).
 */
import { Telegraf, type Context } from 'telegraf';
import type { Logger } from '../../core/logger';
import type { Redactor } from '../../core/redact';
import { backoffDelay } from '../backoff';
import { allowOnlyChats } from './auth';
import { requestButtonHandlers } from './commands/buttons';
import type { BotDeps } from './commands/deps';
import { fleetCommands } from './commands/fleet';
import { helpCommands, unknownCommand } from './commands/help';
import { requestCommands } from './commands/requests';
import { statusCommands } from './commands/status';
import { spendCommands } from './commands/spend';
import { rolloutCommands } from './commands/rollout';
import { botCommands } from './menu';
import type { BotServices } from './services';
import type { TelegramSettings } from './settings';

export interface TelegramBotOptions {
  settings: TelegramSettings;
  services: BotServices;
  logger: Logger;
  redactor: Redactor;
}

export function buildBot(opts: TelegramBotOptions, background: Set<Promise<unknown>> = new Set()): Telegraf<Context> {
  const { settings, logger, redactor } = opts;
  const bot = new Telegraf<Context>(settings.token, { telegram: { apiRoot: settings.apiRoot }, handlerTimeout: 60_000 });
  const deps: BotDeps = { services: opts.services, logger, redactor, background };
  bot.catch((err, ctx) => {
    logger.error({ err: redactor.text((err as Error)?.message ?? String(err)), update: ctx.updateType }, 'Telegram: a bot handler failed');
  });
  bot.use(allowOnlyChats(settings.chatIds, deps));
  bot.use(helpCommands(deps), statusCommands(deps), rolloutCommands(deps), fleetCommands(deps), requestCommands(deps), spendCommands(deps), requestButtonHandlers(deps), unknownCommand(deps));
  return bot;
}

const sleep = (ms: number, signal: { stopped: boolean }) => new Promise<void>((resolve) => {
  const t = setTimeout(resolve, ms);
  const poll = setInterval(() => { if (signal.stopped) { clearTimeout(t); clearInterval(poll); resolve(); } }, 100);
  setTimeout(() => clearInterval(poll), ms + 10);
});

export class TelegramBot {
  readonly bot: Telegraf<Context>;
  private readonly background = new Set<Promise<unknown>>();
  private readonly state = { stopped: true };
  private loop: Promise<void> | null = null;
  private launched = false;

  constructor(private readonly opts: TelegramBotOptions) {
    this.bot = buildBot(opts, this.background);
  }

  /** Resolves at once; connecting, registering the menu and polling go on in the background. */
  start(): void {
    if (!this.state.stopped) return;
    this.state.stopped = false;
    this.loop = this.run();
  }

  get running(): boolean { return this.launched; }

  private async run(): Promise<void> {
    const { logger, redactor } = this.opts;
    let failures = 0;
    let menuDone = false;
    while (!this.state.stopped) {
      try {
        this.bot.botInfo = await this.bot.telegram.getMe();
        if (!menuDone) {
          await this.bot.telegram.setMyCommands(botCommands());
          menuDone = true;
        }
        failures = 0;
        logger.info({ bot: this.bot.botInfo.username, chats: this.opts.settings.chatIds.length }, `Telegram bot @${this.bot.botInfo.username} is listening`);
        if (this.state.stopped) break;
        this.launched = true;
        await this.bot.launch({ dropPendingUpdates: false });
        this.launched = false;
        if (this.state.stopped) break;
        logger.warn('Telegram polling ended unexpectedly; restarting it');
      } catch (err) {
        this.launched = false;
        if (this.state.stopped) break;
        failures++;
        const delay = backoffDelay(failures, { baseMs: 1000, maxMs: 60_000, jitter: 0.2 });
        const msg = redactor.text((err as Error).message ?? String(err));
        if (failures === 1 || failures % 10 === 0) {
          logger.warn({ err: msg, attempts: failures, retry_in_ms: delay }, 'Telegram bot cannot reach the Bot API; retrying (alerts wait in the outbox)');
        }
        await sleep(delay, this.state);
      }
    }
  }

  /** Stops polling and waits (bounded) for replies and background actions in flight. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.state.stopped) return;
    this.state.stopped = true;
    let loopDone = false;
    void this.loop?.finally(() => { loopDone = true; });
    const until = Date.now() + timeoutMs;
    // launch() may be between deleteWebhook and its first poll: keep asking until polling exists or the loop ends.
    while (!loopDone && Date.now() < until) {
      try {
        this.bot.stop('shutdown');
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const deadline = new Promise((r) => setTimeout(r, Math.max(0, until - Date.now())).unref());
    await Promise.race([Promise.allSettled([this.loop, ...this.background]), deadline]);
  }
}
