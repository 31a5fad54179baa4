/**
 * The sweep loop: one sweep checks every slave (bounded concurrency, slowest first, circuit breaker,
 * drift), persists each result with its alert (results of one event-loop turn share a transaction),
 * then asks the pure policy (./policy.ts) what to do and runs the actions (./actions/) in the
 * background, one task per slave, so a long deploy never delays the next sweep.
 */
import type { Logger } from '../../core/logger';
import type { FleetConfig, SlaveConfig } from '../../core/stack-config';
import { findSlave, sshKeyMissing } from '../../core/stack-config';
import { shortCommit } from '../../core/version-info';
import type { HealthResponse } from '../../core/protocol';
import type { Store } from '../store';
import { nowIso } from '../store/db';
import type { SlaveRecord } from '../store/slaves';
import type { ControlResult } from '../store/commands';
import { AgentClient, waitForHealth, type HealthResult } from '../agent-client';
import { CircuitBreaker } from '../checker/breaker';
import { DriftClassifier } from '../checker/drift';
import { alertFor, nextState, type CheckOutcome } from '../checker/state-machine';
import { mapBounded } from '../limit';
import type { MasterVersion } from '../master-version';
import type { DeployCoordinator } from '../deploy/coordinator';
import type { Tuning } from './tuning';
import { policy, type Action } from './policy';
import { checkAlert } from './check-alerts';
import type { ActionContext } from './actions/context';
import { recover, type RecoveryReason } from './actions/recover';
import { update } from './actions/update';
import { askHuman } from './actions/ask-human';
import { escalateUnreachable } from './actions/escalate';

export interface SweepSummary {
  checked: number;
  healthy: number;
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
}

type PendingWrite = { run: () => SlaveRecord; resolve: (r: SlaveRecord) => void; reject: (e: Error) => void };

export class Supervisor {
  readonly client: AgentClient;
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly drift: DriftClassifier;
  /** Slaves with a recovery/update task running in this process. */
  private readonly busy = new Map<string, Promise<ControlResult>>();
  private readonly tasks = new Set<Promise<unknown>>();
  private stopping = false;
  /** Last check's cost per slave (ms; failures count as a full deadline), to order the next sweep. */
  private readonly lastCost = new Map<string, number>();
  private readonly pendingWrites: PendingWrite[] = [];
  private readonly ctx: ActionContext;

  constructor(private readonly d: SupervisorDeps) {
    const t = d.tuning;
    this.client = new AgentClient({ attempts: t.checkAttempts, attemptTimeoutMs: t.attemptTimeoutMs, deadlineMs: t.checkDeadlineMs, retryDelayMs: t.retryDelayMs });
    this.drift = new DriftClassifier(d.repoDir);
    this.ctx = {
      config: d.config, stack: d.config.stack, store: d.store, deploys: d.deploys, client: this.client, log: d.logger, tuning: t,
      masterCommit: () => d.version.current.commit,
      sshKeyMissing: (s) => sshKeyMissing(d.config, s),
      // After a restart or deploy the slave has changed: an open breaker must not hide the result.
      checkAndRecord: (s, m) => { this.breaker(s.name).reset(); return this.checkAndRecord(s, m); },
      awaitAgent: (s, ms, accept) => this.awaitAgent(s, ms, accept),
    };
  }

  get stack(): string {
    return this.d.config.stack;
  }

  private get log(): Logger {
    return this.d.logger;
  }

  breaker(name: string): CircuitBreaker {
    let b = this.breakers.get(name);
    if (!b) {
      b = new CircuitBreaker({ failureThreshold: this.d.tuning.breakerFailures, openMs: this.d.tuning.breakerOpenMs });
      this.breakers.set(name, b);
    }
    return b;
  }

  stop(): void {
    this.stopping = true;
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

  async sweep(): Promise<SweepSummary> {
    const started = Date.now();
    const previous = this.d.version.refresh();
    const master = this.d.version.current;
    if (previous) {
      this.d.store.master.heartbeat(this.stack, master.commit, master.branch);
      this.d.store.outbox.enqueue({ kind: 'master_version_changed', stack: this.stack, slave: null, data: { master_commit: master.commit, previous_commit: previous } });
    }
    // Slowest and failing slaves first: their timeouts then overlap the fast checks instead of
    // holding concurrency slots at the end of the sweep.
    const cost = (s: SlaveConfig): number => this.lastCost.get(s.name) ?? 0;
    const ordered = [...this.d.config.slaves].sort((a, b) => cost(b) - cost(a));
    const results = await mapBounded(ordered, this.d.tuning.concurrency, (s) => this.checkAndRecord(s, master.commit));
    this.d.store.master.heartbeat(this.stack, master.commit, master.branch);
    if (this.d.act !== false && !this.stopping) {
      this.runApprovedRequests();
      const now = Date.now();
      for (const rec of results) this.act(rec.name, master.commit, now);
    }
    return { checked: results.length, healthy: results.filter((r) => r.state === 'healthy').length, durationMs: Date.now() - started, masterCommit: master.commit };
  }

  /** One check of one slave, persisted with its alert (one transaction). */
  async checkAndRecord(slave: SlaveConfig, masterCommit: string): Promise<SlaveRecord> {
    const now = Date.now();
    const b = this.breaker(slave.name);
    let h: HealthResult;
    if (!b.allow(now)) {
      h = { ok: false, error: 'circuit breaker open (not contacted)', reachable: false, latencyMs: 0 };
    } else {
      h = await this.client.health(slave);
      if (h.ok) b.success(); else b.failure(Date.now());
      this.lastCost.set(slave.name, h.ok ? h.latencyMs : this.d.tuning.checkDeadlineMs + h.latencyMs);
    }
    let outcome: CheckOutcome;
    if (h.ok) outcome = { ok: true, commit: h.health.commit, drift: await this.drift.classify(masterCommit, h.health.commit) };
    else outcome = { ok: false, error: h.error };
    return this.record(slave, masterCommit, h, outcome, b.state(Date.now()));
  }

  /**
   * Group commit: results that land in the same event-loop turn are written in one transaction
   * (a commit costs more than the rows in it), each still with its own alert decision.
   */
  private record(slave: SlaveConfig, masterCommit: string, h: HealthResult, outcome: CheckOutcome, breaker: string): Promise<SlaveRecord> {
    return new Promise((resolve, reject) => {
      this.pendingWrites.push({ run: () => this.recordOne(slave, masterCommit, h, outcome, breaker), resolve, reject });
      if (this.pendingWrites.length === 1) setImmediate(() => this.flushWrites());
    });
  }

  private flushWrites(): void {
    const batch = this.pendingWrites.splice(0);
    if (batch.length === 0) return;
    let out: SlaveRecord[];
    try {
      out = this.d.store.db.transaction(() => batch.map((b) => b.run())).immediate();
    } catch (err) {
      for (const b of batch) b.reject(err as Error);
      return;
    }
    batch.forEach((b, i) => b.resolve(out[i]));
  }

  private recordOne(slave: SlaveConfig, masterCommit: string, h: HealthResult, outcome: CheckOutcome, breaker: string): SlaveRecord {
    const store = this.d.store;
    const now = Date.now();
    const prev = store.slaves.getOrEmpty(this.stack, slave.name);
    const next = nextState(prev, outcome, { deadAfter: this.d.tuning.deadAfter });
    const rec: SlaveRecord = { ...prev, state: next.state, failures: next.failures, last_check: nowIso(now), breaker };
    if (h.ok) {
      Object.assign(rec, {
        commit: h.health.commit, branch: h.health.branch, strategy: h.health.install_strategy ?? prev.strategy,
        last_seen: nowIso(now), last_error: null, last_error_reachable: false,
        drift: outcome.ok ? outcome.drift : 'unknown',
      });
    } else {
      Object.assign(rec, { last_error: h.error, last_error_reachable: h.reachable, drift: 'unknown' });
    }
    if (rec.state === 'healthy') Object.assign(rec, { recovery_attempts: 0, next_recovery_at: null, escalated: false });
    const key = rec.state === 'version_mismatch' ? `${rec.drift}:${rec.commit}:${masterCommit}` : null;
    const decision = alertFor(rec.state, key, { alertKind: prev.alert_kind, alertAt: prev.alert_at ? Date.parse(prev.alert_at) : null, alertKey: prev.alert_key }, now, this.d.tuning.resendMs);
    if (decision) {
      store.outbox.enqueue(checkAlert(this.stack, decision, slave, rec, prev, masterCommit), now);
      if (decision.kind === 'slave_recovered') Object.assign(rec, { alert_kind: null, alert_at: null, alert_key: null });
      else Object.assign(rec, { alert_kind: decision.kind, alert_at: nowIso(now), alert_key: key });
    } else if (rec.state === 'healthy' && prev.alert_kind) {
      Object.assign(rec, { alert_kind: null, alert_at: null, alert_key: null });
    }
    store.slaves.put(rec);
    store.slaves.addCheck(this.stack, slave.name, { ok: h.ok, latencyMs: h.latencyMs, commit: h.ok ? h.health.commit : null, error: h.ok ? null : h.error });
    if (prev.state !== rec.state) this.log.info({ slave: slave.name, from: prev.state, to: rec.state, drift: rec.drift, error: rec.last_error }, `${slave.name}: ${prev.state} -> ${rec.state}`);
    return rec;
  }

  /** Runs a background task for a slave; a second request while one runs joins it (coalesces). */
  private track(slave: string, start: () => Promise<ControlResult | void>): Promise<ControlResult> {
    const running = this.busy.get(slave);
    if (running) return running;
    const t: Promise<ControlResult> = start()
      .then((r) => r ?? { ok: true, action: 'none', message: `${slave}: nothing to do` })
      .catch((err) => {
        this.log.error({ slave, err: (err as Error).message }, 'background task failed');
        return { ok: false, action: 'none', message: (err as Error).message };
      })
      .finally(() => { this.busy.delete(slave); this.tasks.delete(t); });
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
    const actions = policy(rec, { ...slave, stack: this.stack, sshKeyMissing: this.ctx.sshKeyMissing(slave) }, masterCommit, now);
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
    for (const req of this.d.store.requests.list({ status: 'APPROVED' })) {
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
