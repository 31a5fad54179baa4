/**
 * A local stand-in of the Telegram Bot API, faithful enough for the real telegraf client to talk to it
 * through `telegram: { apiRoot }`. It implements the methods the bot uses (getMe, deleteWebhook,
 * getUpdates with offset/limit/timeout long polling, sendMessage, editMessageText,
 * answerCallbackQuery, setMyCommands, getMyCommands) with Telegram's own validation errors, and gives
 * tests controls: inject a user message or a button press from a chat, read what the bot sent, answer
 * 429 with retry_after for the next N calls, carry out the next N calls but lose their answers (the
 * connection is cut before the response), go down (refuse connections or answer 502) and come back.
 */
import http from 'http';
import net from 'net';

export interface TgUser { id: number; is_bot: boolean; first_name: string; username?: string }
export interface TgChat { id: number; type: 'private' | 'group'; first_name?: string; title?: string }
export interface TgEntity { type: string; offset: number; length: number }
export interface TgInlineButton { text: string; callback_data?: string; url?: string }
export interface TgReplyMarkup { inline_keyboard: TgInlineButton[][] }
export interface TgMessage {
  message_id: number;
  from: TgUser;
  chat: TgChat;
  date: number;
  text: string;
  entities?: TgEntity[];
  reply_markup?: TgReplyMarkup;
  edit_date?: number;
}
export interface TgCallbackQuery { id: string; from: TgUser; message: TgMessage; chat_instance: string; data: string }
export interface TgUpdate { update_id: number; message?: TgMessage; callback_query?: TgCallbackQuery }

/** One API call as the stand-in received it (the token is never recorded). */
export interface ApiCall {
  method: string;
  params: Record<string, unknown>;
  at: number;
  /** HTTP status the stand-in answered with (0 while a long poll still waits, or when it was cancelled). */
  status: number;
}

/** What the bot sent to a chat, in its latest state (edits applied) with its edit history. */
export interface SentMessage extends TgMessage { history: string[]; keyboards: TgReplyMarkup[] }

export interface CallbackAnswer { callback_query_id: string; text?: string; show_alert?: boolean; at: number }

export type DownMode = 'refuse' | '502';

class ApiError extends Error {
  constructor(readonly code: number, readonly description: string, readonly parameters?: Record<string, unknown>) {
    super(description);
  }
}

const MAX_TEXT = 4096;
const COMMAND_RE = /^[a-z0-9_]{1,32}$/;

interface PendingPoll { resolve: () => void; timer: NodeJS.Timeout }

export class TelegramStandIn {
  readonly token: string;
  readonly bot: TgUser;
  private server: http.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private portNumber = 0;
  private down: DownMode | null = null;
  private rateLimits: Array<{ remaining: number; retryAfter: number; methods: Set<string> | null; chatId: number | null; text: RegExp | null }> = [];
  private drops: Array<{ remaining: number; methods: Set<string> | null }> = [];

  private nextUpdateId = 1;
  private readonly updates: TgUpdate[] = [];
  private readonly pollers = new Set<PendingPoll>();
  private activePoll: { res: http.ServerResponse; cancel: () => void } | null = null;

  private nextMessageId = 1;
  private readonly messages = new Map<string, SentMessage>(); // `${chat}:${id}`
  private readonly sentOrder: SentMessage[] = [];
  private readonly chats = new Map<number, TgChat>();
  private nextCallbackId = 1;
  private readonly callbacks = new Map<string, { answered: boolean }>();
  readonly answers: CallbackAnswer[] = [];
  readonly calls: ApiCall[] = [];
  commands: Array<{ command: string; description: string }> = [];
  private readonly waiters = new Set<() => void>();

  constructor(opts: { token?: string; username?: string } = {}) {
    this.token = opts.token ?? `${100000 + Math.floor(Math.random() * 899999)}:AAF${randomChars(32)}`;
    this.bot = { id: Number(this.token.split(':')[0]), is_bot: true, first_name: 'D8 Fleet', username: opts.username ?? 'd8_fleet_test_bot' };
  }

  get port(): number { return this.portNumber; }
  get apiRoot(): string { return `http://127.0.0.1:${this.portNumber}`; }

  async start(): Promise<void> {
    await this.listen(this.portNumber);
  }

  async stop(): Promise<void> {
    for (const p of this.pollers) { clearTimeout(p.timer); p.resolve(); }
    await this.closeListener();
  }

  // ---------------------------------------------------------------- test controls

  /** A chat that exists (has /start-ed the bot); sending to any other chat is "chat not found". */
  addChat(chatId: number): void {
    if (!this.chats.has(chatId)) {
      this.chats.set(chatId, chatId < 0 ? { id: chatId, type: 'group', title: `group ${chatId}` } : { id: chatId, type: 'private', first_name: `user${chatId}` });
    }
  }

  /** A user in `chatId` types `text` (commands get their bot_command entity, as Telegram does). */
  injectMessage(chatId: number, text: string, fromId: number = Math.abs(chatId)): TgUpdate {
    this.addChat(chatId);
    const message: TgMessage = {
      message_id: this.nextMessageId++,
      from: { id: fromId, is_bot: false, first_name: `user${fromId}` },
      chat: this.chats.get(chatId)!,
      date: now(),
      text,
    };
    const cmd = /^\/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?/.exec(text);
    if (cmd) message.entities = [{ type: 'bot_command', offset: 0, length: cmd[0].length }];
    return this.pushUpdate({ update_id: 0, message });
  }

  /**
   * A user in `chatId` presses the inline button with `data` under the bot's message `messageId`.
   * With `stale`, the button may be one the message no longer shows (a client that had not yet seen
   * the edit), as happens with real Telegram.
   */
  injectCallback(chatId: number, messageId: number, data: string, opts: { fromId?: number; stale?: boolean } = {}): TgUpdate {
    const fromId = opts.fromId ?? Math.abs(chatId);
    const message = this.messages.get(`${chatId}:${messageId}`);
    if (!message) throw new Error(`stand-in: no bot message ${messageId} in chat ${chatId}`);
    const keyboards = opts.stale ? message.keyboards : message.reply_markup ? [message.reply_markup] : [];
    const buttons = keyboards.flatMap((k) => k.inline_keyboard.flat());
    if (!buttons.some((b) => b.callback_data === data)) {
      throw new Error(`stand-in: message ${messageId} has no button with data "${data}" (has: ${buttons.map((b) => b.callback_data).join(', ')})`);
    }
    const id = String(this.nextCallbackId++) + randomChars(6);
    this.callbacks.set(id, { answered: false });
    const plain = strip(message);
    return this.pushUpdate({
      update_id: 0,
      callback_query: { id, from: { id: fromId, is_bot: false, first_name: `user${fromId}` }, message: plain, chat_instance: `ci${chatId}`, data },
    });
  }

  /** Answer HTTP 429 with `retry_after` (seconds) to the next `count` calls (of `methods` / to `chatId` / with a matching `text`; default any). */
  rateLimitNext(count: number, retryAfter: number, filter: { methods?: string[]; chatId?: number; text?: RegExp } = {}): void {
    this.rateLimits.push({ remaining: count, retryAfter, methods: filter.methods ? new Set(filter.methods) : null, chatId: filter.chatId ?? null, text: filter.text ?? null });
  }

  /**
   * Carries out the next `count` calls (of `methods`; default any but getUpdates) and then cuts the
   * connection instead of answering: Telegram accepted the message, the answer is lost on the way.
   * Such calls are recorded with status -1. A count of 0 stops dropping.
   */
  dropResponsesOfNext(count: number, methods: string[] = ['sendMessage']): void {
    if (count <= 0) this.drops = [];
    else this.drops.push({ remaining: count, methods: new Set(methods) });
  }

  /** Telegram is unreachable: connections refused (listener closed), or every call answered 502. */
  async goDown(mode: DownMode = 'refuse'): Promise<void> {
    this.down = mode;
    const poll = this.activePoll;
    if (poll) {
      poll.cancel();
      if (mode === '502' && !poll.res.writableEnded) {
        poll.res.writeHead(502, { 'content-type': 'text/html' });
        poll.res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
      }
    }
    if (mode === 'refuse') await this.closeListener();
  }

  async comeUp(): Promise<void> {
    const wasRefusing = this.down === 'refuse';
    this.down = null;
    if (wasRefusing) await this.listen(this.portNumber);
  }

  get isDown(): boolean { return this.down !== null; }

  /** Messages the bot sent, in order (latest state of each), optionally for one chat. */
  sent(chatId?: number): SentMessage[] {
    return this.sentOrder.filter((m) => chatId === undefined || m.chat.id === chatId);
  }

  callsOf(method: string): ApiCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** Updates not yet confirmed by a getUpdates offset. */
  get pendingUpdates(): number { return this.updates.length; }

  /** Polls until `check` returns a truthy value (re-checked on every API call and every 100 ms). */
  async waitFor<T>(check: () => T | undefined | null | false, timeoutMs = 30000, what = 'condition'): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`stand-in: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, 100);
        function done(): void { clearTimeout(t); waiters.delete(done); resolve(); }
        const waiters = this.waiters;
        waiters.add(done);
      });
    }
  }

  /** Waits for the `n`-th message (1-based count) the bot sends to `chatId` matching `match`. */
  async waitForMessage(chatId: number, match: RegExp | ((m: SentMessage) => boolean), timeoutMs = 30000): Promise<SentMessage> {
    const pred = typeof match === 'function' ? match : (m: SentMessage) => match.test(m.text);
    return this.waitFor(() => this.sent(chatId).find(pred), timeoutMs, `a message to chat ${chatId} matching ${String(match)}`);
  }

  // ---------------------------------------------------------------- HTTP

  private listen(port: number): Promise<void> {
    const server = http.createServer((req, res) => { this.onRequest(req, res); });
    server.keepAliveTimeout = 65_000; // like a real API front: no artificial idle-socket races with keep-alive clients
    server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        this.portNumber = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  private closeListener(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (this.activePoll) this.activePoll.cancel();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (!server) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void this.handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((err: unknown) => {
        if (!res.headersSent) send(res, 500, { ok: false, error_code: 500, description: `Internal Server Error: ${(err as Error).message}` });
      });
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, body: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://standin');
    const m = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    const method = m?.[2] ?? url.pathname;
    let params: Record<string, unknown> = {};
    // A call is listed when it arrives (a long poll is visible while it waits); its status when answered.
    const call: ApiCall = { method, params, at: Date.now(), status: 0 };
    this.calls.push(call);
    const record = (status: number): void => {
      call.params = params;
      call.status = status;
      this.wake();
    };
    if (this.down === '502') {
      record(502);
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
      return;
    }
    if (!m) { record(404); send(res, 404, { ok: false, error_code: 404, description: 'Not Found' }); return; }
    if (m[1] !== this.token) { record(401); send(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' }); return; }
    try {
      params = parseParams(req.headers['content-type'], body, url.searchParams);
      call.params = params;
      this.wake();
    } catch (err) {
      record(400); send(res, 400, { ok: false, error_code: 400, description: `Bad Request: ${(err as Error).message}` }); return;
    }
    const limit = this.rateLimits.find((r) => r.remaining > 0 && (!r.methods || r.methods.has(method)) &&
      (r.chatId === null || String(params.chat_id) === String(r.chatId)) && (r.text === null || r.text.test(String(params.text ?? ''))));
    if (limit) {
      limit.remaining--;
      this.rateLimits = this.rateLimits.filter((r) => r.remaining > 0);
      record(429);
      send(res, 429, { ok: false, error_code: 429, description: `Too Many Requests: retry after ${limit.retryAfter}`, parameters: { retry_after: limit.retryAfter } });
      return;
    }
    try {
      const result = method === 'getUpdates' ? await this.getUpdates(params, res) : this.call(method, params);
      if (result === CANCELLED) return;
      const drop = this.drops.find((d) => d.remaining > 0 && (!d.methods || d.methods.has(method)));
      if (drop) {
        drop.remaining--;
        this.drops = this.drops.filter((d) => d.remaining > 0);
        record(-1);
        req.socket.destroy();
        return;
      }
      record(200);
      send(res, 200, { ok: true, result });
    } catch (err) {
      if (err instanceof ApiError) {
        record(err.code);
        send(res, err.code, { ok: false, error_code: err.code, description: err.description, ...(err.parameters ? { parameters: err.parameters } : {}) });
      } else throw err;
    }
  }

  private call(method: string, p: Record<string, unknown>): unknown {
    switch (method) {
      case 'getMe': return { ...this.bot, can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false };
      case 'deleteWebhook': return true;
      case 'getWebhookInfo': return { url: '', has_custom_certificate: false, pending_update_count: this.updates.length };
      case 'sendMessage': return this.sendMessage(p);
      case 'editMessageText': return this.editMessageText(p);
      case 'answerCallbackQuery': return this.answerCallbackQuery(p);
      case 'setMyCommands': return this.setMyCommands(p);
      case 'getMyCommands': return this.commands;
      case 'deleteMyCommands': this.commands = []; return true;
      default: throw new ApiError(404, 'Not Found');
    }
  }

  private getUpdates(p: Record<string, unknown>, res: http.ServerResponse): Promise<TgUpdate[] | typeof CANCELLED> {
    const offset = optInt(p.offset, 'offset') ?? 0;
    const limit = Math.min(100, Math.max(1, optInt(p.limit, 'limit') ?? 100));
    const timeout = Math.max(0, optInt(p.timeout, 'timeout') ?? 0);
    // A newer getUpdates terminates an older one, as Telegram does.
    if (this.activePoll) {
      const old = this.activePoll;
      this.activePoll = null;
      old.cancel();
      send(old.res, 409, { ok: false, error_code: 409, description: 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running' });
    }
    if (offset > 0) {
      while (this.updates.length && this.updates[0].update_id < offset) this.updates.shift();
    } else if (offset < 0) {
      const keep = this.updates.slice(offset);
      this.updates.splice(0, this.updates.length, ...keep);
    }
    const take = (): TgUpdate[] => this.updates.slice(0, limit);
    if (this.updates.length > 0 || timeout === 0) return Promise.resolve(take());
    return new Promise((resolve) => {
      let settled = false;
      const finish = (v: TgUpdate[] | typeof CANCELLED): void => {
        if (settled) return;
        settled = true;
        clearTimeout(poll.timer);
        this.pollers.delete(poll);
        if (this.activePoll?.res === res) this.activePoll = null;
        resolve(v);
      };
      const poll: PendingPoll = { resolve: () => finish(take()), timer: setTimeout(() => finish(take()), timeout * 1000) };
      this.pollers.add(poll);
      this.activePoll = { res, cancel: () => finish(CANCELLED) };
      // The client gave up (telegraf aborts its poll on stop): forget the poll.
      res.on('close', () => { if (!res.writableEnded) finish(CANCELLED); });
    });
  }

  private sendMessage(p: Record<string, unknown>): TgMessage {
    const chat = this.chatOf(p.chat_id);
    const text = checkText(p.text);
    checkParseMode(p.parse_mode);
    const reply_markup = checkMarkup(p.reply_markup);
    const msg: SentMessage = { message_id: this.nextMessageId++, from: this.bot, chat, date: now(), text, history: [text], keyboards: [] };
    if (reply_markup) { msg.reply_markup = reply_markup; msg.keyboards.push(reply_markup); }
    this.messages.set(`${chat.id}:${msg.message_id}`, msg);
    this.sentOrder.push(msg);
    return strip(msg);
  }

  private editMessageText(p: Record<string, unknown>): TgMessage {
    const chat = this.chatOf(p.chat_id);
    const id = optInt(p.message_id, 'message_id');
    if (id === undefined) throw new ApiError(400, 'Bad Request: message identifier is not specified');
    const msg = this.messages.get(`${chat.id}:${id}`);
    if (!msg) throw new ApiError(400, 'Bad Request: message to edit not found');
    const text = checkText(p.text);
    checkParseMode(p.parse_mode);
    const reply_markup = checkMarkup(p.reply_markup);
    if (text === msg.text && JSON.stringify(reply_markup ?? null) === JSON.stringify(msg.reply_markup ?? null)) {
      throw new ApiError(400, 'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message');
    }
    msg.text = text;
    msg.history.push(text);
    if (reply_markup) { msg.reply_markup = reply_markup; msg.keyboards.push(reply_markup); } else delete msg.reply_markup;
    msg.edit_date = now();
    return strip(msg);
  }

  private answerCallbackQuery(p: Record<string, unknown>): true {
    const id = typeof p.callback_query_id === 'string' ? p.callback_query_id : undefined;
    const q = id ? this.callbacks.get(id) : undefined;
    if (!id || !q || q.answered) throw new ApiError(400, 'Bad Request: query is too old and response timeout expired or query ID is invalid');
    if (p.text !== undefined && (typeof p.text !== 'string' || p.text.length > 200)) throw new ApiError(400, 'Bad Request: MESSAGE_TOO_LONG');
    q.answered = true;
    this.answers.push({ callback_query_id: id, text: p.text as string | undefined, show_alert: p.show_alert as boolean | undefined, at: Date.now() });
    return true;
  }

  private setMyCommands(p: Record<string, unknown>): true {
    const list = p.commands;
    if (!Array.isArray(list)) throw new ApiError(400, 'Bad Request: commands must be an array');
    if (list.length > 100) throw new ApiError(400, 'Bad Request: too many commands');
    const out: Array<{ command: string; description: string }> = [];
    for (const c of list as Array<Record<string, unknown>>) {
      if (typeof c?.command !== 'string' || !COMMAND_RE.test(c.command)) throw new ApiError(400, 'Bad Request: BOT_COMMAND_INVALID');
      if (typeof c.description !== 'string' || c.description.length < 1 || c.description.length > 256) {
        throw new ApiError(400, 'Bad Request: BOT_COMMAND_DESCRIPTION_INVALID');
      }
      out.push({ command: c.command, description: c.description });
    }
    this.commands = out;
    return true;
  }

  private chatOf(raw: unknown): TgChat {
    const id = typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : raw;
    if (typeof id !== 'number' || !Number.isInteger(id)) throw new ApiError(400, 'Bad Request: chat not found');
    const chat = this.chats.get(id);
    if (!chat) throw new ApiError(400, 'Bad Request: chat not found');
    return chat;
  }

  private pushUpdate(u: TgUpdate): TgUpdate {
    u.update_id = this.nextUpdateId++;
    this.updates.push(u);
    for (const p of [...this.pollers]) p.resolve();
    return u;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

const CANCELLED = Symbol('cancelled');

/** The message as the Bot API shows it (without the stand-in's bookkeeping). */
function strip(m: SentMessage): TgMessage {
  const { history: _h, keyboards: _k, ...plain } = m;
  void _h; void _k;
  return plain;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function parseParams(contentType: string | undefined, body: string, query: URLSearchParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of query) out[k] = coerce(v);
  const ct = (contentType ?? '').toLowerCase();
  if (body.trim() === '') return out;
  if (ct.startsWith('application/json')) {
    let parsed: unknown;
    try { parsed = JSON.parse(body); } catch { throw new Error('invalid JSON body'); }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('the body must be a JSON object');
    return { ...out, ...(parsed as Record<string, unknown>) };
  }
  if (ct.startsWith('application/x-www-form-urlencoded')) {
    for (const [k, v] of new URLSearchParams(body)) out[k] = coerce(v);
    return out;
  }
  throw new Error(`unsupported content type ${ct || '(none)'}`);
}

/** Form values arrive as strings; Telegram decodes JSON-looking ones (reply_markup, commands). */
function coerce(v: string): unknown {
  if (/^[[{]/.test(v)) { try { return JSON.parse(v); } catch { return v; } }
  if (/^-?\d+$/.test(v)) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  return v;
}

function optInt(v: unknown, name: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new ApiError(400, `Bad Request: invalid ${name} specified`);
  return n;
}

function checkText(v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '') throw new ApiError(400, 'Bad Request: message text is empty');
  if (v.length > MAX_TEXT) throw new ApiError(400, 'Bad Request: message is too long');
  return v;
}

function checkParseMode(v: unknown): void {
  if (v === undefined || v === '') return;
  if (v !== 'HTML' && v !== 'Markdown' && v !== 'MarkdownV2') throw new ApiError(400, `Bad Request: unsupported parse_mode "${String(v)}"`);
}

function checkMarkup(v: unknown): TgReplyMarkup | undefined {
  if (v === undefined || v === null) return undefined;
  const kb = (v as { inline_keyboard?: unknown }).inline_keyboard;
  if (!Array.isArray(kb) || !kb.every(Array.isArray)) throw new ApiError(400, 'Bad Request: object expected as reply markup');
  for (const row of kb as unknown[][]) {
    for (const b of row as Array<Record<string, unknown>>) {
      if (typeof b?.text !== 'string' || b.text === '') throw new ApiError(400, 'Bad Request: BUTTON_TEXT_INVALID');
      if (b.callback_data !== undefined) {
        const len = typeof b.callback_data === 'string' ? Buffer.byteLength(b.callback_data) : 0;
        if (len < 1 || len > 64) throw new ApiError(400, 'Bad Request: BUTTON_DATA_INVALID');
      } else if (typeof b.url !== 'string') {
        throw new ApiError(400, 'Bad Request: can\'t parse inline keyboard button: Text buttons are unallowed in the inline keyboard');
      }
    }
  }
  return v as TgReplyMarkup;
}

function now(): number { return Math.floor(Date.now() / 1000); }

function randomChars(n: number): string {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
  let s = '';
  for (let i = 0; i < n; i++) s += abc[Math.floor(Math.random() * abc.length)];
  return s;
}
