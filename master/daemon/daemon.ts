/**
 * The long-running master: a sweep every interval, failing slaves re-checked at the retry interval,
 * a sweep at once when the master's own HEAD moves (a watch on the repository, the periodic re-read
 * as fallback), control commands (d8 retry / update from the CLI) picked up from the store within a
 * second, the alert dispatcher, and a clean stop on SIGTERM: the loop stops, an in-flight deploy may
 * finish within the grace period or is marked interrupted, the process exits 0.
 */
import type { Logger } from '../../core/logger';
import { RETRY_INTERVAL_DEFAULT_S, sshKeyMissing, type FleetConfig } from '../../core/stack-config';
import { SSH_KEY_FIX } from '../notify/fix-hints';
import { shortCommit } from '../../core/version-info';
import type { Store } from '../store';
import type { ControlResult } from '../store/commands';
import type { Deployer } from '../deploy/deployer';
import { DeployCoordinator } from '../deploy/coordinator';
import { MasterVersion } from '../master-version';
import { nextSweep } from '../checker/schedule';
import { AlertDispatcher } from '../notify/dispatcher';
import type { Notifier } from '../notify/notifier';
import { Supervisor, type SweepSummary } from './supervisor';
import type { Tuning } from './tuning';
import { HistoryRetention } from '../store/retention';
import { buildLogDir } from '../deploy/build-log';
import { AgentClient } from '../agent-client';
import { withAgentToken } from '../agent-tokens';
import { ChannelWatch, type SlaveChannelStatus } from '../channel/channel-watch';

export interface DaemonOptions {
  config: FleetConfig;
  store: Store;
  deployer: Deployer;
  notifier: Notifier;
  logger: Logger;
  tuning: Tuning;
  repoDir: string;
  intervalMs: number;
  once?: boolean;
  /** Told after every sweep (the dashboard's /metrics). */
  onSweep?: (summary: SweepSummary) => void;
}

export class MasterDaemon {
  readonly supervisor: Supervisor;
  readonly deploys: DeployCoordinator;
  readonly version: MasterVersion;
  private readonly dispatcher: AlertDispatcher;
  private stopped = false;
  private sweepTimer: NodeJS.Timeout | null = null;
  private controlTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<SweepSummary | null> | null = null;
  private stopPromise: Promise<void> | null = null;
  private lastFullAt: number | null = null;
  /** Slaves left pending by the last sweep (re-checked at the retry interval). */
  private pending: string[] = [];
  private wakeRequested = false;
  /** A full sweep asked for at a later time (a rollout's gate ends then), the earliest one only. */
  private wakeTimer: { timer: NodeJS.Timeout; at: number } | null = null;
  private unwatch: (() => void) | null = null;
  /** Results of control commands the store refused to record, written again at the next poll. */
  private readonly unfinished = new Map<number, ControlResult>();
  private readonly retention: HistoryRetention;
  private channels: { watch: ChannelWatch; client: AgentClient } | null = null;
  /** Slaves whose channel closed, re-checked by the next (immediate) retry sweep. */
  private readonly urgent = new Set<string>();

  constructor(private readonly o: DaemonOptions) {
    this.version = new MasterVersion(o.repoDir, o.logger);
    this.deploys = new DeployCoordinator(o.config.stack, o.deployer, o.store.deploys, o.logger, { locks: o.store.deployLocks, holder: 'd8 master (daemon)' });
    this.supervisor = new Supervisor({
      config: o.config, store: o.store, version: this.version, deploys: this.deploys, logger: o.logger, tuning: o.tuning, repoDir: o.repoDir,
      onMissedMove: () => this.wake(),
      wakeAt: (at) => this.wakeAt(at),
    });
    this.dispatcher = new AlertDispatcher(o.store.outbox, o.notifier, o.logger);
    this.retention = new HistoryRetention({ db: o.store.db, stack: o.config.stack, policy: o.config.retention, buildLogDir: buildLogDir(), logger: o.logger });
  }

  get stack(): string {
    return this.o.config.stack;
  }

  async start(): Promise<void> {
    const { store, config, logger } = this.o;
    const reaped = store.deploys.reapOrphans(this.stack);
    if (reaped) logger.warn({ count: reaped }, 'deploys left running by a previous master were marked interrupted');
    store.commands.failStale(this.stack, 'the master restarted while this command ran; run it again');
    const v = this.version.current;
    store.master.started(this.stack, v.commit, v.branch, this.deploys.engine);
    logger.info({ stack: this.stack, slaves: config.slaves.map((s) => s.name), interval_s: this.o.intervalMs / 1000, retry_interval_s: this.retryMs / 1000, engine: this.deploys.engine, store: store.file, commit: v.commit },
      `master ${shortCommit(v.commit)} supervising ${config.slaves.length} slave(s) of stack ${this.stack} every ${this.o.intervalMs / 1000}s`);
    const keyless = config.slaves.filter((s) => sshKeyMissing(config, s)).map((s) => s.name);
    if (keyless.length) {
      logger.warn({ slaves: keyless, fix: SSH_KEY_FIX },
        `no SSH key configured: ${keyless.join(', ')} are checked and alerted on, and a dead agent that still answers HTTP is restarted, ` +
        `but redeploy and update are unavailable for them (each becomes a human request); to enable them, ${SSH_KEY_FIX}`);
    }
    this.dispatcher.start();
    if (this.o.once) {
      await this.runSweep();
      await this.supervisor.settle(this.o.tuning.stopGraceMs);
      await this.dispatcher.drain();
      return;
    }
    this.startChannels();
    this.controlTimer = setInterval(() => this.pollControl(), this.o.tuning.controlPollMs);
    this.unwatch = this.version.watch(() => {
      logger.info('the master\'s HEAD moved: sweeping now');
      this.wake();
    });
    this.scheduleSweep();
  }

  private startChannels(): void {
    const { config, store, logger } = this.o;
    if (config.channel?.enabled === false || !config.slaves.length) return;
    const client = new AgentClient({ maxSockets: 1, pins: store.pins.lookup(config.stack) });
    const watch = new ChannelWatch({
      slaves: config.slaves, client, everyS: config.channel?.heartbeatSeconds ?? 5, logger,
      open: (slave, call) => withAgentToken(config, slave.name, call),
      onLost: (slave) => this.checkNow(slave),
      onChange: (c) => this.recordChannels([c]),
    });
    this.channels = { watch, client };
    watch.start();
  }

  /** Writes channel states for `d8 status` and /metrics; a store that refuses is one log line (the next sweep writes them again). */
  private recordChannels(channels: SlaveChannelStatus[]): void {
    try {
      this.o.store.channels.record(this.stack, channels);
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'cannot record channel states');
    }
  }

  /** A re-check of `slave` now (its channel closed), unless a deploy or recovery of it is under way and checks it itself. */
  checkNow(slave: string): void {
    if (this.stopped || this.supervisor.isBusy(slave)) return;
    this.urgent.add(slave);
    if (this.sweeping) return;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.scheduleSweep();
  }

  /** The retry interval, never longer than the sweep interval. */
  private get retryMs(): number {
    return Math.min(this.o.intervalMs, (this.o.config.retryIntervalSeconds ?? RETRY_INTERVAL_DEFAULT_S) * 1000);
  }

  /** A full sweep as soon as the running one (if any) ends. */
  wake(): void {
    this.wakeRequested = true;
    if (this.stopped || this.sweeping) return;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.scheduleSweep();
  }

  /** A full sweep at `at` (now when it has passed); an earlier request wins. */
  wakeAt(at: number): void {
    if (this.stopped) return;
    const ms = at - Date.now();
    if (ms <= 0) return this.wake();
    if (this.wakeTimer && this.wakeTimer.at <= at) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer.timer);
    const timer = setTimeout(() => { this.wakeTimer = null; this.wake(); }, ms);
    timer.unref();
    this.wakeTimer = { timer, at };
  }

  private scheduleSweep(): void {
    if (this.stopped) return;
    const plan = nextSweep({
      now: Date.now(), lastFullAt: this.lastFullAt, intervalMs: this.o.intervalMs, retryMs: this.retryMs,
      failing: this.pending.length > 0, wake: this.wakeRequested, urgent: this.urgent.size > 0,
    });
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = null;
      if (plan.kind === 'full') {
        this.lastFullAt = Date.now();
        this.wakeRequested = false;
      }
      // A retry sweep checks the pending slaves when due, or only the urgent ones when it runs early for them.
      const only = plan.kind === 'full' ? undefined
        : new Set(this.urgent.size ? [...this.urgent] : this.pending);
      this.urgent.clear();
      // runSweep catches what a sweep throws; the next one is scheduled whatever happens, so the loop never stops.
      void this.runSweep(only)
        .then((s) => {
          if (!s) return;
          this.pending = only ? [...new Set([...this.pending.filter((n) => !only.has(n)), ...s.pending])] : s.pending;
        })
        .finally(() => this.scheduleSweep());
    }, Math.max(0, plan.at - Date.now()));
  }

  private async runSweep(only?: ReadonlySet<string>): Promise<SweepSummary | null> {
    this.sweeping = (async () => {
      try {
        const s = await this.supervisor.sweep(only);
        this.o.logger.debug({ ...s }, 'sweep done');
        this.o.onSweep?.(s);
        if (this.channels) this.recordChannels(this.channels.watch.status());
        this.retention.afterSweep();
        return s;
      } catch (err) {
        this.o.logger.error({ err: (err as Error).message }, 'sweep failed (the next one runs on schedule)');
        return null;
      }
    })();
    const r = await this.sweeping;
    this.sweeping = null;
    return r;
  }

  private pollControl(): void {
    if (this.stopped) return;
    this.writeUnfinished();
    let cmds;
    try {
      cmds = this.o.store.commands.claim(this.stack);
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'cannot read control commands');
      return;
    }
    for (const c of cmds) {
      this.o.logger.info({ command: c.kind, slave: c.slave, id: c.id }, `control: ${c.kind} ${c.slave}`);
      const run = c.kind === 'retry' ? this.supervisor.retry(c.slave) : this.supervisor.forceUpdate(c.slave);
      void run
        .catch((err: unknown): ControlResult => ({ ok: false, action: 'none', message: (err as Error).message }))
        .then((r) => this.finishCommand(c.id, r))
        .catch((err: unknown) => this.o.logger.error({ id: c.id, err: (err as Error).message }, 'control command failed unexpectedly'));
    }
  }

  /** Writes a command's result; when the store refuses (busy, I/O), it is kept and written at the next poll. */
  private finishCommand(id: number, r: ControlResult): void {
    try {
      this.o.store.commands.finish(id, r);
      this.unfinished.delete(id);
    } catch (err) {
      if (!this.unfinished.has(id)) this.o.logger.error({ id, err: (err as Error).message }, `cannot record the result of control command ${id}; tried again at the next poll`);
      this.unfinished.set(id, r);
    }
  }

  private writeUnfinished(): void {
    for (const [id, r] of [...this.unfinished]) this.finishCommand(id, r);
  }

  /** Stops the loop; in-flight deploys finish within the grace period or are marked interrupted. */
  stop(reason: string): Promise<void> {
    if (this.stopPromise) return this.stopPromise;
    this.stopPromise = (async () => {
      this.stopped = true;
      this.o.logger.info({ reason }, 'stopping');
      if (this.sweepTimer) clearTimeout(this.sweepTimer);
      if (this.wakeTimer) clearTimeout(this.wakeTimer.timer);
      if (this.controlTimer) clearInterval(this.controlTimer);
      this.unwatch?.();
      this.channels?.watch.stop();
      this.channels?.client.close();
      this.supervisor.stop();
      if (this.sweeping) await this.sweeping;
      const d = await this.deploys.drain(this.o.tuning.stopGraceMs);
      if (d.interrupted.length) this.o.logger.warn({ slaves: d.interrupted }, 'deploys still running at stop were marked interrupted');
      await this.supervisor.settle(Math.min(5000, this.o.tuning.stopGraceMs));
      await this.dispatcher.drain();
      await this.dispatcher.stop();
      await this.o.notifier.close?.();
      this.o.store.master.stopped(this.stack);
      this.supervisor.close();
      this.o.logger.info('stopped');
    })();
    return this.stopPromise;
  }
}
