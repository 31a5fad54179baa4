/**
 * One channel per agent the master reaches (GET /api/channel, core/protocol.ts): a stream of health
 * and heartbeats over the agent's own pinned TLS. When a channel that was open closes, or two
 * heartbeats in a row do not arrive, `onLost` is told at once, so a killed agent is checked within a
 * second instead of at the next sweep. The sweeps stay the source of truth (and the only checks of
 * agents from before channels); this only makes them come sooner.
 */
import type http from 'http';
import type { Logger } from '../../core/logger';
import { ChannelLineSchema, type HealthResponse } from '../../core/protocol';
import { ConfigError, type SlaveConfig } from '../../core/stack-config';
import type { ChannelStatus } from '../../core/fleet-state';
import { AgentCallError, AgentPinMismatchError, type AgentClient } from '../agent-client';

export interface ChannelWatchOptions {
  slaves: SlaveConfig[];
  client: AgentClient;
  /** Opens the channel presenting the slave's token (master/agent-tokens.ts withAgentToken). */
  open: (slave: SlaveConfig, call: (token: string) => Promise<http.IncomingMessage>) => Promise<http.IncomingMessage>;
  everyS: number;
  logger: Logger;
  /** A channel that was open is gone: check this slave now. */
  onLost: (slave: string, why: string) => void;
  onHealth?: (slave: string, health: HealthResponse) => void;
  /** A channel opened or ended (to record it). */
  onChange?: (status: SlaveChannelStatus) => void;
}

/** A slave's channel as this process sees it (core/fleet-state.ts, without the store's stamp). */
export type SlaveChannelStatus = Omit<ChannelStatus, 'updated_at'> & { slave: string };

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;
/**
 * An agent from before channels (404), one that refuses every token (401: each refusal counts towards
 * its lockout of this address) or a slave without a token is asked again this much later.
 */
const RETRY_REFUSED_MS = 5 * 60_000;
/** A line longer than this is not the agent's: the channel is dropped. */
const MAX_LINE_BYTES = 64 * 1024;

class SlaveChannel {
  readonly status: SlaveChannelStatus;
  private res: http.IncomingMessage | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private missTimer: NodeJS.Timeout | null = null;
  private retryMs = RETRY_MIN_MS;
  private opened = 0;
  private stopped = false;

  constructor(private readonly slave: SlaveConfig, private readonly o: ChannelWatchOptions) {
    this.status = { slave: slave.name, connected: false, since: null, last_heartbeat_at: null, reconnects: 0, last_error: null };
  }

  start(): void {
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.missTimer) clearTimeout(this.missTimer);
    this.res?.destroy();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let res: http.IncomingMessage;
    try {
      res = await this.o.open(this.slave, (token) => this.o.client.openChannel(this.slave, token, this.o.everyS));
    } catch (err) {
      this.status.last_error = (err as Error).message;
      const refused = err instanceof ConfigError || (err instanceof AgentCallError && !(err instanceof AgentPinMismatchError) && (err.status === 404 || err.status === 401));
      this.retryLater(refused ? RETRY_REFUSED_MS : undefined);
      return;
    }
    if (this.stopped) return void res.destroy();
    this.res = res;
    if (this.opened++ > 0) this.status.reconnects++;
    Object.assign(this.status, { connected: true, since: new Date().toISOString(), last_error: null });
    this.o.onChange?.({ ...this.status });
    this.retryMs = RETRY_MIN_MS;
    this.o.logger.debug({ slave: this.slave.name }, 'channel open');
    this.armMissTimer();
    let buffered = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        this.line(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
      if (buffered.length > MAX_LINE_BYTES) res.destroy(new Error('a channel line over 64 KB'));
    });
    const ended = (why: string): void => {
      if (this.res !== res) return;
      this.res = null;
      if (this.missTimer) clearTimeout(this.missTimer);
      Object.assign(this.status, { connected: false, since: null, last_error: why });
      if (this.stopped) return;
      this.o.onChange?.({ ...this.status });
      this.o.logger.info({ slave: this.slave.name, why }, `channel to ${this.slave.name} lost (${why}): checking it now`);
      this.o.onLost(this.slave.name, why);
      this.retryLater();
    };
    res.once('error', (err) => ended((err as NodeJS.ErrnoException).code ?? err.message));
    res.once('close', () => ended('closed by the agent'));
    res.once('end', () => ended('closed by the agent'));
  }

  private line(text: string): void {
    if (!text.trim()) return;
    let parsed;
    try {
      parsed = ChannelLineSchema.safeParse(JSON.parse(text));
    } catch {
      parsed = null;
    }
    if (!parsed?.success) {
      this.res?.destroy(new Error('a line that is not the channel protocol'));
      return;
    }
    this.status.last_heartbeat_at = new Date().toISOString();
    this.armMissTimer();
    if (parsed.data.kind === 'health') this.o.onHealth?.(this.slave.name, parsed.data.health);
  }

  /** Two heartbeats missed (plus a second of slack): the agent is hung, or the link is gone without a close. */
  private armMissTimer(): void {
    if (this.missTimer) clearTimeout(this.missTimer);
    this.missTimer = setTimeout(() => this.res?.destroy(new Error('two heartbeats missed')), (2 * this.o.everyS + 1) * 1000);
    this.missTimer.unref();
  }

  private retryLater(ms?: number): void {
    if (this.stopped) return;
    const wait = ms ?? this.retryMs;
    if (ms === undefined) this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    this.retryTimer = setTimeout(() => { this.retryTimer = null; void this.connect(); }, wait);
    this.retryTimer.unref();
  }
}

export class ChannelWatch {
  private readonly channels: SlaveChannel[];

  constructor(o: ChannelWatchOptions) {
    this.channels = o.slaves.map((s) => new SlaveChannel(s, o));
  }

  start(): void {
    for (const c of this.channels) c.start();
  }

  stop(): void {
    for (const c of this.channels) c.stop();
  }

  status(): SlaveChannelStatus[] {
    return this.channels.map((c) => ({ ...c.status }));
  }
}
