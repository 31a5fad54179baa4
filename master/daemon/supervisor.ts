/**
 * The sweep loop: one sweep checks every slave (bounded concurrency, slowest first; each check and
 * its record in ./check-recorder.ts), then asks the pure policy (./policy.ts) what to do about each
 * and runs the actions (./actions/) in the background, one task per slave, so a long deploy never
 * delays the next sweep. Its public methods are what the CLI, the bot and the daemon call.
 */
import type { Logger } from '../../core/logger';
import type { FleetConfig, SlaveConfig } from '../../core/stack-config';
import { findSlave, sshKeyMissing } from '../../core/stack-config';
import { shortCommit } from '../../core/version-info';
import type { HealthResponse } from '../../core/protocol';
import type { Store } from '../store';
import type { SlaveRecord } from '../store/slaves';
import type { ControlResult } from '../store/commands';
import { AgentClient, waitForHealth } from '../agent-client';
import type { CircuitBreaker } from '../checker/breaker';
import { mapBounded } from '../limit';
import type { MasterVersion } from '../master-version';
import type { DeployCoordinator } from '../deploy/coordinator';
import type { Tuning } from './tuning';
import { policy, type Action } from './policy';
import { CheckRecorder } from './check-recorder';
import type { ActionContext } from './actions/context';
import { recover, type RecoveryReason } from './actions/recover';
import { update } from './actions/update';
import { askHuman } from './actions/ask-human';
import { escalateUnreachable } from './actions/escalate';
import { RolloutRunner } from './actions/rollout';

export interface SweepSummary {
  checked: number;
  healthy: number;
  /** Slaves whose check failed and that are not dead yet: the retry interval re-checks them. */
  pending: string[];
  durationMs: number;
  masterCommit: string;
}

export interface SupervisorDeps {
  config: FleetConfig;
  store: Store;
  version: MasterVersion;
  deploys: DeployCoordinator;
  logger: Logger;
  tuning: Tuning;
  repoDir: string;
  /** Whether this supervisor may act (recover, update); a read-only one only checks. */
  act?: boolean;
  /** Told when a slave's task ends after the master's commit moved under it (the slave missed that sweep's update). */
  onMissedMove?: () => void;
  /** Asks for a full sweep at a time (a rollout's next step is due then: a gate ends, a deploy finished). */
  wakeAt?: (at: number) => void;
}

export class Supervisor {
  readonly client: AgentClient;
  private readonly checks: CheckRecorder;
  /** Slaves with a recovery/update task running in this process. */
  private readonly busy = new Map<string, Promise<ControlResult>>();
  private readonly tasks = new Set<Promise<unknown>>();
  private stopping = false;
  private readonly ctx: ActionContext;
  readonly rollout: RolloutRunner;
  private rolloutTick: Promise<void> | null = null;

  constructor(private readonly d: SupervisorDeps) {
    const t = d.tuning;
    this.client = new AgentClient({
      attempts: t.checkAttempts, attemptTimeoutMs: t.attemptTimeoutMs, deadlineMs: t.checkDeadlineMs, retryDelayMs: t.retryDelayMs, pins: d.store.pins.lookup(d.config.stack),
    });
    this.checks = new CheckRecorder({ stack: d.config.stack, store: d.store, client: this.client, logger: d.logger, tuning: t, repoDir: d.repoDir });
    const deploys: ActionContext['deploys'] = {
      engine: d.deploys.engine,
      installsGivenBundles: d.deploys.installsGivenBundles,
      releaseBundle: () => d.deploys.releaseBundle(),
      deploy: async (slave, opts) => {
        const r = await d.deploys.deploy(slave, opts);
        // A deploy that succeeded resets the slave's breaker: the failures it counted were the replaced agent's.
        if (r.ok) this.breaker(slave.name).reset();
        return r;
      },
    };
    this.ctx = {
      config: d.config, stack: d.config.stack, store: d.store, deploys, client: this.client, log: d.logger, tuning: t,
      masterCommit: () => d.version.current.commit,
      sshKeyMissing: (s) => sshKeyMissing(d.config, s),
      // After a restart or deploy the slave has changed: an open breaker must not hide the result.
      checkAndRecord: (s, m) => this.checks.checkAndRecord(s, m, { direct: true }),
      awaitAgent: (s, ms, accept) => this.awaitAgent(s, ms, accept),
    };
    this.rollout = new RolloutRunner(this.ctx, (s, task) => void this.track(s, task),
      () => new Set([...this.busy.keys(), ...d.deploys.running().map((f) => f.slave)]), (at) => d.wakeAt?.(at));
    d.deploys.useReleases(this.rollout);
  }

  get stack(): string {
    return this.d.config.stack;
  }

  private get log(): Logger {
    return this.d.logger;
  }

  breaker(name: string): CircuitBreaker {
    return this.checks.breaker(name);
  }

  /** One check of one slave, persisted with its alert. */
  checkAndRecord(slave: SlaveConfig, masterCommit: string): Promise<SlaveRecord> {
    return this.checks.checkAndRecord(slave, masterCommit);
  }

  stop(): void {
    this.stopping = true;
  }

  /** Whether a recovery, update or deploy of `slave` is under way (its own checks say how it went). */
  isBusy(slave: string): boolean {
    return this.busy.has(slave) || this.d.deploys.running().some((f) => f.slave === slave) || this.d.store.deployLocks.get(this.stack, slave) !== null;
  }

  /** Waits for background recovery/update tasks (bounded). */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.tasks.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.tasks]), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())))]);
    }
  }

  close(): void {
    this.client.close();
  }

  /**
   * Checks every slave (or only those named in `only`: a retry sweep), then acts on what the policy
   * says. Each phase (the master's version, each slave's check, approved requests, the rollout, each
   * slave's action) is isolated: one that throws (a store error, a row it cannot read) is logged and
   * tried again next sweep, and the others still run.
   */
  async sweep(only?: ReadonlySet<string>): Promise<SweepSummary> {
    const started = Date.now();
    this.phase('master version', () => {
      const previous = this.d.version.refresh();
      if (!previous) return;
      const v = this.d.version.current;
      this.d.store.master.heartbeat(this.stack, v.commit, v.branch);
      this.d.store.outbox.enqueue({ kind: 'master_version_changed', stack: this.stack, slave: null, data: { master_commit: v.commit, previous_commit: previous } });
    });
    const master = this.d.version.current;
    // Slowest and failing slaves first: their timeouts then overlap the fast checks instead of
    // holding concurrency slots at the end of the sweep.
    const slaves = only ? this.d.config.slaves.filter((s) => only.has(s.name)) : this.d.config.slaves;
    const ordered = [...slaves].sort((a, b) => this.checks.cost(b.name) - this.checks.cost(a.name));
    const checked = await mapBounded(ordered, this.d.tuning.concurrency, (s) => this.checkAndRecord(s, master.commit)
      .catch((err: unknown) => { this.phaseFailed(`check ${s.name}`, err); return null; }));
    const results = checked.filter((r): r is SlaveRecord => r !== null);
    this.phase('heartbeat', () => this.d.store.master.heartbeat(this.stack, master.commit, master.branch));
    if (this.d.act !== false && !this.stopping) {
      this.phase('approved requests', () => this.runApprovedRequests());
      const now = Date.now();
      this.phase('rollout', () => this.tickRollout(results, master.commit, now));
      for (const rec of results) this.phase(`act ${rec.name}`, () => this.act(rec.name, master.commit, now));
    }
    return {
      checked: results.length, healthy: results.filter((r) => r.state === 'healthy').length,
      pending: results.filter((r) => r.state === 'pending').map((r) => r.name), durationMs: Date.now() - started, masterCommit: master.commit,
    };
  }

  private phase(name: string, run: () => void): void {
    try {
      run();
    } catch (err) {
      this.phaseFailed(name, err);
    }
  }

  private phaseFailed(name: string, err: unknown): void {
    this.log.error({ phase: name, err: err instanceof Error ? err.message : String(err) }, `sweep phase "${name}" failed (the other phases ran; tried again next sweep)`);
  }

  /** One rollout step at a time (starting one may build the release's bundle). */
  private tickRollout(results: SlaveRecord[], masterCommit: string, now: number): void {
    if (this.rolloutTick) return;
    const t = this.rollout.afterSweep(results, masterCommit, now)
      .catch((err) => this.log.error({ err: (err as Error).message }, 'rollout step failed (tried again next sweep)'))
      .finally(() => { this.rolloutTick = null; this.tasks.delete(t); });
    this.rolloutTick = t;
    this.tasks.add(t);
  }

  /** Runs a background task for a slave; a second request while one runs joins it (coalesces). */
  private track(slave: string, start: () => Promise<ControlResult | void>): Promise<ControlResult> {
    const running = this.busy.get(slave);
    if (running) return running;
    const commit = this.d.version.current.commit;
    const t: Promise<ControlResult> = start()
      .then((r) => r ?? { ok: true, action: 'none', message: `${slave}: nothing to do` })
      .catch((err) => {
        this.log.error({ slave, err: (err as Error).message }, 'background task failed');
        return { ok: false, action: 'none', message: (err as Error).message };
      })
      .finally(() => {
        this.busy.delete(slave);
        this.tasks.delete(t);
        if (!this.stopping && this.d.version.current.commit !== commit) this.d.onMissedMove?.();
      });
    this.busy.set(slave, t);
    this.tasks.add(t);
    return t;
  }

  /** Asks the policy about one checked slave and runs what it says, in the background. */
  private act(name: string, masterCommit: string, now: number): void {
    const slave = this.d.config.slaves.find((s) => s.name === name);
    if (!slave || this.busy.has(slave.name) || this.d.deploys.isDeploying(slave.name)) return;
    // Read again: an action that ended during this sweep's checks (an escalation, a backoff) changed the row.
    const rec = this.d.store.slaves.get(this.stack, name);
    if (!rec) return;
    const actions = this.rollout.filter(name, policy(rec, { ...slave, stack: this.stack, sshKeyMissing: this.ctx.sshKeyMissing(slave) }, masterCommit, now));
    if (actions.length === 0) return;
    void this.track(slave.name, async () => {
      let last: ControlResult | void = undefined;
      for (const a of actions) last = await this.run(a, slave, rec);
      return last;
    });
  }

  private async run(a: Action, slave: SlaveConfig, rec: SlaveRecord): Promise<ControlResult | void> {
    switch (a.kind) {
      case 'recover': return recover(this.ctx, slave, a.why);
      case 'update': return update(this.ctx, slave, 'behind');
      case 'ask_human': {
        const req = askHuman(this.ctx, slave, rec, a.about, a.targetCommit);
        return { ok: true, action: 'ask_human', message: `${slave.name}: request ${req.id} (${req.status})` };
      }
      case 'escalate': {
        const req = escalateUnreachable(this.ctx, slave, rec);
        this.log.warn({ slave: slave.name, request: req.id }, `${slave.name}: down, and the master has no SSH key to redeploy it: asked a person (${req.id})`);
        return { ok: false, action: 'escalate', message: `${slave.name}: ${req.title}` };
      }
    }
  }

  /** Restart (when the agent answers HTTP) or redeploy; bounded attempts with backoff; then escalate. */
  recover(slave: SlaveConfig, why: RecoveryReason): Promise<ControlResult> {
    return recover(this.ctx, slave, why);
  }

  /** Redeploys a slave and checks it then reports the master's commit; failures back off. */
  update(slave: SlaveConfig, reason: string): Promise<ControlResult> {
    return update(this.ctx, slave, reason);
  }

  /** `d8 retry`: recovers a down slave, updates a mismatched one, re-checks a healthy one. */
  async retry(name: string): Promise<ControlResult> {
    const slave = findSlave(this.d.config, name);
    const running = this.busy.get(name);
    if (running) {
      this.log.info({ slave: name }, 'retry: a recovery or update of this slave is running; waiting for it');
      const r = await running;
      if (r.ok && r.action !== 'none' && r.action !== 'ask_human') return r;
    }
    const run = async (): Promise<ControlResult> => {
      this.breaker(name).reset();
      const rec = await this.checkAndRecord(slave, this.d.version.current.commit);
      if (rec.state === 'healthy') return { ok: true, action: 'check', message: `${name} is healthy (${shortCommit(rec.commit)}); nothing to do`, state: rec.state, commit: rec.commit };
      if (rec.state === 'version_mismatch') {
        if (rec.drift === 'ahead' || rec.drift === 'diverged') {
          return { ok: false, action: 'none', message: `${name} is ${rec.drift} of the master (${shortCommit(rec.commit)}); it is never downgraded by retry: use \`d8 update ${name}\` or approve its request`, state: rec.state, commit: rec.commit };
        }
        return this.update(slave, 'manual');
      }
      return this.recover(slave, 'manual');
    };
    return this.track(name, run);
  }

  /** An explicit update (an approved request, `d8 update`, `/update`): redeploys whatever the drift or policy. */
  async forceUpdate(name: string): Promise<ControlResult> {
    const slave = findSlave(this.d.config, name);
    const running = this.busy.get(name);
    if (running) await running;
    return this.track(name, () => this.update(slave, 'manual'));
  }

  /** Approved requests with an action for this stack run once, then are completed with the outcome. */
  private runApprovedRequests(): void {
    for (const req of this.d.store.requests.actionable()) {
      const a = req.action;
      if (!a || (a.stack && a.stack !== this.stack)) continue;
      if (!this.d.config.slaves.some((s) => s.name === a.slave) || this.busy.has(a.slave)) continue;
      const p = a.kind === 'update' ? this.forceUpdate(a.slave) : this.retry(a.slave);
      void p.then((r) => {
        try {
          this.d.store.requests.complete(req.id, `${r.ok ? 'done' : 'failed'}: ${r.message}`);
        } catch (err) {
          this.log.warn({ request: req.id, err: (err as Error).message }, 'could not complete the request');
        }
      });
    }
  }

  /** Waits (up to `timeoutMs`, or until the daemon stops) for the agent to answer, and to satisfy `accept`. */
  private async awaitAgent(slave: SlaveConfig, timeoutMs: number, accept: (h: HealthResponse) => boolean = () => true): Promise<boolean> {
    const r = await waitForHealth(this.client, slave, accept, timeoutMs, () => this.stopping);
    return r.ok && accept(r.health);
  }
}
