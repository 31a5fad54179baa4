/**
 * One deploy per slave at a time: a second request for a slave whose deploy is running joins it
 * (gets the same promise) instead of starting another. Every deploy is a deploy_history row that
 * is `running` until it ends, so a crash or a stop leaves a visible `interrupted` mark.
 */
import type { Logger } from '../../core/logger';
import type { SlaveConfig } from '../../core/stack-config';
import type { DeployHistory } from '../store/deploys';
import type { BundleInfo } from '../../agent/bundle/build';
import type { Deployer, DeployOptions, DeployResult } from './deployer';

/** Releases (issue 14): which bundle a slave gets when none is given, and what a good deploy installed. */
export interface ReleaseHooks {
  /** A kept release this slave must get instead of the checkout's bundle (a rollout holds it back), or null. */
  bundleFor(slave: SlaveConfig): BundleInfo | null;
  /** A deploy of `bundle` ended well. */
  deployed(slave: SlaveConfig, bundle: BundleInfo): void;
}

export interface InFlight {
  slave: string;
  reason: string;
  historyId: number;
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
    const historyId = this.history.start(this.stack, slave.name, this.deployer.engine, opts.reason);
    const started = Date.now();
    this.logger.info({ slave: slave.name, engine: this.deployer.engine, reason: opts.reason }, `deploying ${slave.name} (${opts.reason})`);
    const promise = (async (): Promise<DeployResult> => {
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
      }
    })();
    this.inFlight.set(slave.name, { slave: slave.name, reason: opts.reason, historyId, promise });
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

  /** Waits for running deploys up to `timeoutMs`; the ones still running are marked interrupted. */
  async drain(timeoutMs: number): Promise<{ finished: number; interrupted: string[] }> {
    const all = this.running();
    if (all.length === 0) return { finished: 0, interrupted: [] };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), timeoutMs); });
    await Promise.race([Promise.allSettled(all.map((f) => f.promise)), timeout]);
    if (timer) clearTimeout(timer);
    const still = this.running();
    for (const f of still) this.history.markInterrupted(f.historyId, 'the master was stopped while this deploy ran');
    return { finished: all.length - still.length, interrupted: still.map((f) => f.slave) };
  }
}
