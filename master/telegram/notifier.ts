/**
 * TelegramNotifier: the outbox dispatcher's delivery end for Telegram. `send` resolves only when
 * every reachable configured chat accepted the message. A 429 becomes NotifierRetryAfter (the
 * dispatcher waits exactly retry_after); network errors and 5xx are thrown so the alert stays in the
 * outbox. With several chats, the chats that already accepted an alert are remembered so a retry does
 * not send it to them twice; a chat Telegram rejects for good (chat not found, bot blocked) is logged
 * and skipped as long as another chat accepted the alert. A send whose answer was lost (the request
 * went out, no answer came back) may have arrived: it is retried once, and when that answer is lost
 * too the chat counts as delivered, so an alert reaches a chat at most twice (docs/telegram.md).
 */
import crypto from 'crypto';
import type { Telegram } from 'telegraf';
import type { Logger } from '../../core/logger';
import { Redactor } from '../../core/redact';
import { NotifierRetryAfter, type Alert, type Notifier } from '../notify/notifier';
import { alertHeadline } from '../notify/headline';
import type { HumanRequest } from '../../core/requests';
import { classifyTelegramError, isNotModified, mayHaveArrived } from './errors';
import { finish, formatAlert, requestDecided, type InlineButton } from './format';
import type { TelegramSettings } from './settings';

export class TelegramDeliveryError extends Error {
  constructor(message: string, readonly failure: string) {
    super(message);
    this.name = 'TelegramDeliveryError';
  }
}

export interface TelegramNotifierOptions {
  telegram: Telegram;
  chatIds: number[];
  logger: Logger;
  redactor: Redactor;
  /** Looks a request up for a richer "new request" message (optional; see setRequestLookup). */
  getRequest?: (id: string) => HumanRequest | null;
  /** The settings it was built from (the bot started next to it reuses them). */
  settings?: TelegramSettings;
}

interface SentRef { chatId: number; messageId: number }

export class TelegramNotifier implements Notifier {
  readonly name = 'telegram';
  private readonly delivered = new Map<string, Set<number>>();
  /** Per alert, the chats where a send may have arrived although its answer was lost. */
  private readonly unconfirmed = new Map<string, Set<number>>();
  private readonly rejectedChats = new Set<number>();
  /** Where each request's message went, so a later decision can take its buttons away. */
  private readonly requestMessages = new Map<string, SentRef[]>();

  private readonly closers: Array<() => Promise<void>> = [];

  constructor(private readonly opts: TelegramNotifierOptions) {}

  get settings(): TelegramSettings | undefined { return this.opts.settings; }
  get logger(): Logger { return this.opts.logger; }
  get redactor(): Redactor { return this.opts.redactor; }

  setRequestLookup(getRequest: (id: string) => HumanRequest | null): void {
    this.opts.getRequest = getRequest;
  }

  /** Something to stop with the notifier (the bot started next to it). */
  onClose(closer: () => Promise<void>): void {
    this.closers.push(closer);
  }

  async close(): Promise<void> {
    for (const c of this.closers.splice(0)) await c().catch(() => undefined);
  }

  async send(alert: Alert): Promise<void> {
    const request = alert.kind === 'human_request' ? this.lookup(alert.data.request_id) : null;
    const msg = formatAlert(alert, { request });
    const text = finish(msg.text, this.opts.redactor);
    const key = crypto.createHash('sha256').update(JSON.stringify(alert)).digest('hex');
    const done = this.delivered.get(key) ?? new Set<number>();
    this.delivered.set(key, done);
    let rejected = 0;
    for (const chatId of this.opts.chatIds) {
      if (done.has(chatId)) continue;
      try {
        const sent = await this.sendOne(chatId, text, msg.buttons, alert);
        done.add(chatId);
        if (alert.kind === 'human_request') this.remember(alert.data.request_id, { chatId, messageId: sent });
      } catch (err) {
        const f = classifyTelegramError(err);
        const detail = this.opts.redactor.text(f.message);
        if (f.kind === 'rate_limited') throw new NotifierRetryAfter(`Telegram rate limit: ${detail}`, f.retryAfterMs);
        if (f.kind === 'chat_rejected') {
          rejected++;
          if (!this.rejectedChats.has(chatId)) {
            this.rejectedChats.add(chatId);
            this.opts.logger.error({ chat_id: chatId, err: detail },
              `Telegram refuses chat ${chatId}: check TELEGRAM_CHAT_ID / d8:telegramChatIds and that this chat has sent /start to the bot`);
          }
          continue;
        }
        if (f.kind === 'unavailable' && mayHaveArrived(err)) {
          const maybe = this.unconfirmed.get(key) ?? new Set<number>();
          this.unconfirmed.set(key, maybe);
          if (maybe.has(chatId)) {
            this.opts.logger.warn({ alert: alert.kind, chat_id: chatId, err: detail },
              `Telegram's answer was lost twice for this alert in chat ${chatId}: counted as delivered, not sent a third time (it may have arrived twice)`);
            done.add(chatId);
            continue;
          }
          maybe.add(chatId);
        }
        throw new TelegramDeliveryError(`Telegram did not accept the alert (${f.kind}): ${detail}`, f.kind);
      }
    }
    if (done.size === 0 && rejected > 0) {
      throw new TelegramDeliveryError('no configured Telegram chat accepts messages (chat not found or bot blocked in every chat)', 'chat_rejected');
    }
    this.delivered.delete(key);
    this.unconfirmed.delete(key);
    if (alert.kind === 'request_changed') await this.retireButtons(alert.data.request_id);
  }

  /** Sends to one chat; a message Telegram calls malformed is retried once as its plain title. */
  private async sendOne(chatId: number, text: string, buttons: InlineButton[][] | undefined, alert: Alert): Promise<number> {
    const extra = buttons ? { reply_markup: { inline_keyboard: buttons } } : {};
    try {
      return (await this.opts.telegram.sendMessage(chatId, text, extra)).message_id;
    } catch (err) {
      if (classifyTelegramError(err).kind !== 'bad_request') throw err;
      this.opts.logger.warn({ alert: alert.kind, err: this.opts.redactor.text((err as Error).message) }, 'Telegram refused an alert message; sending its headline only');
      return (await this.opts.telegram.sendMessage(chatId, finish(alertHeadline(alert), this.opts.redactor))).message_id;
    }
  }

  private lookup(id: string): HumanRequest | null {
    try {
      return this.opts.getRequest?.(id) ?? null;
    } catch {
      return null;
    }
  }

  private remember(requestId: string, ref: SentRef): void {
    const refs = this.requestMessages.get(requestId) ?? [];
    refs.push(ref);
    this.requestMessages.set(requestId, refs);
    if (this.requestMessages.size > 500) this.requestMessages.delete(this.requestMessages.keys().next().value as string);
  }

  /** Once a request is decided anywhere (CLI, a command, a button), its message loses its buttons. */
  private async retireButtons(requestId: string): Promise<void> {
    const refs = this.requestMessages.get(requestId);
    const request = this.lookup(requestId);
    if (!refs || !request || request.status === 'PENDING' || request.status === 'POSTPONED') return;
    this.requestMessages.delete(requestId);
    const text = finish(requestDecided(request), this.opts.redactor);
    for (const ref of refs) {
      try {
        await this.opts.telegram.editMessageText(ref.chatId, ref.messageId, undefined, text);
      } catch (err) {
        if (!isNotModified(err)) this.opts.logger.debug({ err: this.opts.redactor.text((err as Error).message) }, 'could not update a request message');
      }
    }
  }
}
