/**
 * One deploy per slave at a time: a second request for a slave whose deploy is running in this
 * process joins it (gets the same promise) instead of starting another; across processes (`d8 up`,
 * `d8 retry`, the daemon) the slave's deploy lock in the store serializes them: the later one waits,
 * told who holds it, or gives up at once with `noWait` (status failed, kind `locked`). Every deploy
 * is a deploy_history row that is `running` until it ends, so a crash or a stop leaves a visible
 * `interrupted` mark.
 */
import type { BundleInfo } from '../../agent/bundle/build';
import type { Logger } from '../../core/logger';
import type { SlaveConfig } from '../../core/stack-config';
import type { DeployHistory } from '../store/deploys';
import type { DeployLockHolder, DeployLocks } from '../store/deploy-locks';
import type { Deployer, DeployOptions, DeployResult } from './deployer';

/** Releases (issue 14): which bundle a slave gets when none is given, and what a good deploy installed. */
export interface ReleaseHooks {
  /** A kept release this slave must get instead of the checkout's bundle (a rollout holds it back), or null. */
  bundleFor(slave: SlaveConfig): BundleInfo | null;
  /** A deploy of `bundle` ended well. */
  deployed(slave: SlaveConfig, bundle: BundleInfo): void;
}

export interface DeployLockOptions {
  locks: DeployLocks;
  /** What this process is, for the holder line others see (e.g. `d8 up`). */
  holder: string;
  /** Told when this deploy starts waiting, and again whenever the holder changes. */
  onWait?: (slave: string, holder: DeployLockHolder) => void;
  /** How long to wait for the lock before failing with kind `locked` (default 30 min). */
  waitTimeoutMs?: number;
  pollMs?: number;
}

/** `d8 up (pid 4242, since 2026-11-30T10:31:02.000Z, reason manual)` */
export function describeHolder(h: DeployLockHolder): string {
  return `${h.holder} (pid ${h.pid}, since ${h.acquired_at}, reason ${h.reason})`;
}

class LockBusy extends Error {
  constructor(readonly holder: DeployLockHolder, waitedMs: number | null) {
    super(waitedMs === null
      ? `another deploy of ${holder.slave} is running: ${describeHolder(holder)}; not waiting (--no-wait)`
      : `another deploy of ${holder.slave} is still running after ${Math.round(waitedMs / 1000)} s of waiting: ${describeHolder(holder)}`);
    this.name = 'LockBusy';
  }
}

export interface InFlight {
  slave: string;
  reason: string;
  /** null while waiting for the slave's deploy lock. */
  historyId: number | null;
  promise: Promise<DeployResult>;
}

export class DeployCoordinator {
  private readonly inFlight = new Map<string, InFlight>();
  private releases: ReleaseHooks | null = null;

  constructor(
    private readonly stack: string,
    private readonly deployer: Deployer,
    private readonly history: DeployHistory,
    private readonly logger: Logger,
    private readonly lock?: DeployLockOptions,
  ) {}

  get engine(): string {
    return this.deployer.engine;
  }

  /** The bundle a deploy without a given one installs now (null: this deployer cannot install a given bundle). */
  releaseBundle(): Promise<BundleInfo | null> {
    return this.deployer.bundle ? this.deployer.bundle() : Promise.resolve(null);
  }

  /** Whether the deployer installs a given bundle (a kept release); rollouts and rollbacks need it. */
  get installsGivenBundles(): boolean {
    return typeof this.deployer.bundle === 'function';
  }

  useReleases(hooks: ReleaseHooks): void {
    this.releases = hooks;
  }

  isDeploying(slave: string): boolean {
    return this.inFlight.has(slave);
  }

  running(): InFlight[] {
    return [...this.inFlight.values()];
  }

  deploy(slave: SlaveConfig, opts: DeployOptions): Promise<DeployResult> {
    const existing = this.inFlight.get(slave.name);
    if (existing) {
      this.logger.info({ slave: slave.name, reason: opts.reason, running_reason: existing.reason }, 'a deploy of this slave is already running: joining it');
      return existing.promise;
    }
    const started = Date.now();
    const promise = (async (): Promise<DeployResult> => {
      try {
        await this.takeLock(slave.name, opts);
      } catch (err) {
        this.inFlight.delete(slave.name);
        const msg = (err as Error).message ?? String(err);
        this.logger.warn({ slave: slave.name, holder: err instanceof LockBusy ? err.holder : undefined }, msg);
        return {
          slave: slave.name, engine: this.deployer.engine, status: 'failed', ok: false, strategy: null, attempts: [], commit: null,
          buildLogPath: null, error: err instanceof LockBusy ? msg : `cannot take the deploy lock of ${slave.name}: ${msg}`,
          errorKind: err instanceof LockBusy ? 'locked' : 'engine', durationMs: Date.now() - started,
        };
      }
      const historyId = this.history.start(this.stack, slave.name, this.deployer.engine, opts.reason);
      this.setHistory(slave.name, historyId);
      this.logger.info({ slave: slave.name, engine: this.deployer.engine, reason: opts.reason }, `deploying ${slave.name} (${opts.reason})`);
      try {
        const bundle = await this.bundleFor(slave, opts);
        const r = await this.deployer.deploy(slave, bundle ? { ...opts, bundle } : opts);
        this.history.finish(historyId, r);
        if (r.ok && bundle && r.commit === bundle.versionInfo.commit) this.keep(slave, bundle);
        this.logger.info({ slave: slave.name, ok: r.ok, strategy: r.strategy, commit: r.commit, build_log: r.buildLogPath, ms: r.durationMs },
          r.ok ? `deployed ${slave.name} (${r.strategy ?? 'no strategy'})` : `deploy of ${slave.name} failed: ${r.error ?? 'unknown error'}`);
        return r;
      } catch (err) {
        const msg = (err as Error).message ?? String(err);
        this.history.fail(historyId, msg);
        this.logger.error({ slave: slave.name, err: msg }, `deploy of ${slave.name} threw`);
        return {
          slave: slave.name, engine: this.deployer.engine, status: 'failed', ok: false, strategy: null, attempts: [], commit: null,
          buildLogPath: null, error: msg, errorKind: 'engine', durationMs: Date.now() - started,
        };
      } finally {
        this.inFlight.delete(slave.name);
        this.lock?.locks.release(this.stack, slave.name);
      }
    })();
    this.inFlight.set(slave.name, { slave: slave.name, reason: opts.reason, historyId: null, promise });
    return promise;
  }

  private async bundleFor(slave: SlaveConfig, opts: DeployOptions): Promise<BundleInfo | undefined> {
    if (opts.bundle || !this.releases || !this.deployer.bundle) return opts.bundle;
    return this.releases.bundleFor(slave) ?? this.deployer.bundle();
  }

  private keep(slave: SlaveConfig, bundle: BundleInfo): void {
    try {
      this.releases?.deployed(slave, bundle);
    } catch (err) {
      this.logger.warn({ slave: slave.name, err: (err as Error).message }, 'could not keep the deployed release');
    }
  }

  private setHistory(slave: string, id: number): void {
    const f = this.inFlight.get(slave);
    if (f) f.historyId = id;
  }

  /** Takes the slave's deploy lock, waiting (with word of who holds it) unless `noWait`. */
  private async takeLock(slave: string, opts: DeployOptions): Promise<void> {
    const l = this.lock;
    if (!l) return;
    const t0 = Date.now();
    const timeout = l.waitTimeoutMs ?? 30 * 60 * 1000;
    let told: string | null = null;
    for (;;) {
      const r = l.locks.tryTake(this.stack, slave, l.holder, opts.reason);
      if (r.taken) {
        if (r.replacedStale) this.logger.warn({ slave, stale: r.replacedStale }, `took over the deploy lock of ${slave} from a holder that is gone: ${describeHolder(r.replacedStale)}`);
        return;
      }
      if (opts.noWait) throw new LockBusy(r.holder, null);
      if (Date.now() - t0 >= timeout) throw new LockBusy(r.holder, Date.now() - t0);
      const key = `${r.holder.pid}@${r.holder.acquired_at}`;
      if (told !== key) {
        told = key;
        this.logger.info({ slave, holder: r.holder }, `waiting for the deploy of ${slave} by ${describeHolder(r.holder)}`);
        l.onWait?.(slave, r.holder);
      }
      await new Promise((res) => setTimeout(res, l.pollMs ?? 500));
    }
  }

  /** Waits for running deploys up to `timeoutMs`; the ones still running are marked interrupted. */
  async drain(timeoutMs: number): Promise<{ finished: number; interrupted: string[] }> {
    const all = this.running();
    if (all.length === 0) return { finished: 0, interrupted: [] };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), timeoutMs); });
    await Promise.race([Promise.allSettled(all.map((f) => f.promise)), timeout]);
    if (timer) clearTimeout(timer);
    const still = this.running();
    for (const f of still) if (f.historyId !== null) this.history.markInterrupted(f.historyId, 'the master was stopped while this deploy ran');
    return { finished: all.length - still.length, interrupted: still.map((f) => f.slave) };
  }
}
