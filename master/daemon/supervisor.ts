/**
 * The supervisor: one sweep checks every slave (bounded concurrency, circuit breaker, drift),
 * persists each result with its alert in one transaction, then acts: recover dead slaves, update
 * slaves that are behind (per policy), ask a human for the rest. Deploys run in the background
 * through the DeployCoordinator, so a long deploy never delays the next sweep.
 */
import type { Logger } from '../../core/logger';
import type { FleetConfig, SlaveConfig } from '../../core/stack-config';
import { findSlave } from '../../core/stack-config';
import { shortCommit } from '../../core/version-info';
import type { Store } from '../store';
import { nowIso } from '../store/db';
import type { SlaveRecord } from '../store/slaves';
import type { ControlResult } from '../store/commands';
import { AgentClient, waitForHealth, type HealthResult } from '../agent-client';
import type { HealthResponse } from '../../core/protocol';
import { CircuitBreaker } from '../checker/breaker';
import { DriftClassifier, type Drift } from '../checker/drift';
import { alertFor, nextState, type CheckOutcome } from '../checker/state-machine';
import { backoffDelay } from '../backoff';
import { mapBounded } from '../limit';
import type { MasterVersion } from '../master-version';
import type { DeployCoordinator } from '../deploy/coordinator';
import type { DeployResult } from '../deploy/deployer';
import type { AlertInput } from '../notify/notifier';
import type { Tuning } from './tuning';

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

const tail = (s: string | null | undefined, n = 400): string => (s ? (s.length > n ? '…' + s.slice(-n) : s) : '');

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
  private readonly pendingWrites: Array<{ run: () => SlaveRecord; resolve: (r: SlaveRecord) => void; reject: (e: Error) => void }> = [];

  constructor(private readonly d: SupervisorDeps) {
    const t = d.tuning;
    this.client = new AgentClient({ attempts: t.checkAttempts, attemptTimeoutMs: t.attemptTimeoutMs, deadlineMs: t.checkDeadlineMs, retryDelayMs: t.retryDelayMs });
    this.drift = new DriftClassifier(d.repoDir);
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
      this.d.store.outbox.enqueue({
        kind: 'master_version_changed', stack: this.stack, slave: null,
        title: `Master is now at ${shortCommit(master.commit)} (was ${shortCommit(previous)})`,
        text: 'Slaves will be compared with the new commit from this sweep on.',
        data: { master_commit: master.commit },
      });
    }
    // Slowest and failing slaves first: their timeouts then overlap the fast checks instead of
    // holding concurrency slots at the end of the sweep.
    const cost = (s: SlaveConfig): number => this.lastCost.get(s.name) ?? 0;
    const ordered = [...this.d.config.slaves].sort((a, b) => cost(b) - cost(a));
    const results = await mapBounded(ordered, this.d.tuning.concurrency, (s) => this.checkAndRecord(s, master.commit));
    this.d.store.master.heartbeat(this.stack, master.commit, master.branch);
    if (this.d.act !== false && !this.stopping) {
      this.runApprovedRequests();
      for (const rec of results) this.maybeAct(rec);
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
    {
      const now = Date.now();
      const prev = store.slaves.getOrEmpty(this.stack, slave.name);
      const next = nextState(prev, outcome, { deadAfter: this.d.tuning.deadAfter });
      const rec: SlaveRecord = { ...prev, state: next.state, failures: next.failures, last_check: nowIso(now), breaker };
      if (h.ok) {
        Object.assign(rec, {
          commit: h.health.commit, branch: h.health.branch, strategy: h.health.install_strategy ?? prev.strategy,
          supervisor: h.health.supervisor, reboot_safe: h.health.supervisor === null ? null : h.health.reboot_safe,
          last_seen: nowIso(now), last_error: null, last_error_reachable: false,
          drift: outcome.ok ? outcome.drift : 'unknown',
        });
      } else {
        Object.assign(rec, { last_error: h.error, last_error_reachable: h.reachable, drift: 'unknown' as Drift });
      }
      if (rec.state === 'healthy') Object.assign(rec, { recovery_attempts: 0, next_recovery_at: null, escalated: false });
      const key = rec.state === 'version_mismatch' ? `${rec.drift}:${rec.commit}:${masterCommit}` : null;
      const decision = alertFor(rec.state, key, { alertKind: prev.alert_kind, alertAt: prev.alert_at ? Date.parse(prev.alert_at) : null, alertKey: prev.alert_key }, now, this.d.tuning.resendMs);
      if (decision) {
        store.outbox.enqueue(this.alertText(decision.kind, slave, rec, prev, masterCommit, decision.resend), now);
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
  }

  private alertText(kind: 'version_mismatch' | 'slave_dead' | 'slave_recovered', slave: SlaveConfig, rec: SlaveRecord, prev: SlaveRecord, masterCommit: string, resend: boolean): AlertInput {
    const base = { stack: this.stack, slave: slave.name };
    const again = resend ? ' (still)' : '';
    if (kind === 'version_mismatch') {
      const action = rec.drift === 'behind'
        ? { auto: 'it will be updated now.', approve: 'an update request was filed for approval.', off: 'auto-update is off for it.' }[slave.autoUpdate]
        : rec.drift === 'unknown' ? 'its commit is not in the master\'s repository.' : 'it will not be downgraded automatically; a human request was filed.';
      return {
        ...base, kind,
        title: `⚠️ ${slave.name} version mismatch${again}: ${shortCommit(rec.commit)} is ${rec.drift} (master ${shortCommit(masterCommit)})`,
        text: `${slave.name} runs ${shortCommit(rec.commit)} (${rec.branch ?? '?'}), the master runs ${shortCommit(masterCommit)}: ${action}`,
        data: { master_commit: masterCommit, slave_commit: rec.commit, drift: rec.drift, state: rec.state, previous_state: prev.state, strategy: rec.strategy, resend },
      };
    }
    if (kind === 'slave_dead') {
      return {
        ...base, kind,
        title: `🔴 ${slave.name} is dead${again} (${rec.failures} failed checks)`,
        text: `${slave.name} (${slave.agentHost}:${slave.agentPort}) does not answer: ${rec.last_error ?? 'unknown error'}. Last seen: ${rec.last_seen ?? 'never'}.`,
        data: { master_commit: masterCommit, slave_commit: rec.commit, state: rec.state, previous_state: prev.state, error_tail: tail(rec.last_error), resend },
      };
    }
    return {
      ...base, kind,
      title: `✅ ${slave.name} recovered (${rec.state}, ${shortCommit(rec.commit)})`,
      text: `${slave.name} answers again after being ${prev.alert_kind === 'slave_dead' ? 'dead' : 'out of date'}.`,
      data: { master_commit: masterCommit, slave_commit: rec.commit, drift: rec.drift, state: rec.state, previous_state: prev.state, strategy: rec.strategy },
    };
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

  private maybeAct(rec: SlaveRecord): void {
    const slave = this.d.config.slaves.find((s) => s.name === rec.name);
    if (!slave || this.busy.has(slave.name) || this.d.deploys.isDeploying(slave.name)) return;
    const now = Date.now();
    const due = (at: string | null): boolean => !at || Date.parse(at) <= now;
    const neverSeen = rec.last_seen === null;
    if (this.stack === 'dev' && slave.local && neverSeen && (rec.state === 'pending' || rec.state === 'dead') && !rec.escalated && due(rec.next_recovery_at) && rec.recovery_attempts === 0) {
      void this.track(slave.name, () => this.recover(slave, 'missing'));
      return;
    }
    if (rec.state === 'dead' && !rec.escalated && due(rec.next_recovery_at)) {
      void this.track(slave.name, () => this.recover(slave, 'dead'));
      return;
    }
    if (rec.state === 'version_mismatch') void this.track(slave.name, () => this.handleMismatch(slave, rec));
  }

  /** Restart (when the agent answers HTTP) or redeploy; bounded attempts with backoff; then escalate. */
  async recover(slave: SlaveConfig, why: 'dead' | 'missing' | 'manual'): Promise<ControlResult> {
    const t = this.d.tuning;
    const rec = this.d.store.slaves.getOrEmpty(this.stack, slave.name);
    const attempt = why === 'manual' ? rec.recovery_attempts : rec.recovery_attempts + 1;
    let action = 'redeploy';
    let result: DeployResult | null = null;
    let back = false;
    if (rec.last_error_reachable && this.d.config.agentToken) {
      action = 'restart';
      try {
        await this.client.restart(slave, this.d.config.agentToken);
        this.log.info({ slave: slave.name, attempt }, `${slave.name}: restart requested`);
        back = await this.awaitAgent(slave, t.settleMs);
      } catch (err) {
        this.log.warn({ slave: slave.name, err: (err as Error).message }, `${slave.name}: restart failed; redeploying`);
      }
    }
    if (!back) {
      action = action === 'restart' ? 'restart+redeploy' : 'redeploy';
      result = await this.d.deploys.deploy(slave, { force: true, reason: why });
      back = result.ok && (await this.awaitAgent(slave, t.settleMs));
    }
    const checked = await this.checkAndRecord(slave, this.d.version.current.commit);
    if (back && checked.state !== 'dead' && checked.state !== 'pending') {
      this.d.store.slaves.patch(this.stack, slave.name, { recovery_attempts: 0, next_recovery_at: null, escalated: false });
      return { ok: true, action, message: `${slave.name} is back (${checked.state}, ${shortCommit(checked.commit)})`, state: checked.state, commit: checked.commit, build_log_path: result?.buildLogPath ?? null };
    }
    const error = result?.error ?? checked.last_error ?? 'the slave did not come back';
    const next = now() + backoffDelay(attempt, { baseMs: t.recoveryBackoffMs, maxMs: t.recoveryBackoffMaxMs, jitter: 0.1 });
    const escalate = why !== 'manual' && attempt >= t.recoveryAttempts;
    this.d.store.db.transaction(() => {
      this.d.store.slaves.patch(this.stack, slave.name, { recovery_attempts: attempt, next_recovery_at: nowIso(next), escalated: escalate || rec.escalated });
      if (escalate) {
        this.d.store.outbox.enqueue({
          kind: why === 'missing' ? 'provisioning_failed' : 'recovery_failed', stack: this.stack, slave: slave.name,
          title: `🆘 ${slave.name} could not be recovered after ${attempt} attempts`,
          text: `Last error: ${tail(error)}${result?.buildLogPath ? `\nBuild log: ${result.buildLogPath}` : ''}`,
          data: { error_tail: tail(error), build_log_path: result?.buildLogPath ?? null, strategies: slave.strategies, attempt, engine: this.d.deploys.engine, attempts: result?.attempts ?? [] },
        });
        this.d.store.requests.create({
          type: 'INFRASTRUCTURE', priority: 'high', created_by: 'master',
          title: `${slave.name} stays down: fix the host, then retry`,
          description: `${slave.name} (${slave.host}, agent ${slave.agentHost}:${slave.agentPort}) is ${checked.state} and ${attempt} recovery attempts (restart, redeploy with ${slave.strategies.join(', ')}) failed.\n` +
            `Last error: ${tail(error)}\nBuild log: ${result?.buildLogPath ?? 'none'}\nAfter fixing it: \`d8 retry ${slave.name}\` (or approve this request to retry).`,
          action: { kind: 'retry', slave: slave.name, stack: this.stack },
        });
      }
    }).immediate();
    this.log.warn({ slave: slave.name, attempt, escalated: escalate, err: tail(error, 200) }, `${slave.name}: recovery attempt ${attempt} failed`);
    return { ok: false, action, message: `${slave.name} is still ${checked.state}: ${tail(error, 300)}`, state: checked.state, commit: checked.commit, build_log_path: result?.buildLogPath ?? null };
  }

  private async handleMismatch(slave: SlaveConfig, rec: SlaveRecord): Promise<void> {
    const master = this.d.version.current.commit;
    if (rec.drift === 'behind') {
      if (slave.autoUpdate === 'off') return;
      if (slave.autoUpdate === 'approve') {
        const existing = this.d.store.requests.findByAction('update', slave.name, master);
        if (existing) return;
        const req = this.d.store.requests.create({
          type: 'INFRASTRUCTURE', priority: 'normal', created_by: 'master',
          title: `Update ${slave.name} from ${shortCommit(rec.commit)} to ${shortCommit(master)}?`,
          description: `${slave.name} is behind the master (${shortCommit(rec.commit)} -> ${shortCommit(master)}). Approving redeploys it with the ${this.d.deploys.engine} engine.`,
          action: { kind: 'update', slave: slave.name, stack: this.stack, target_commit: master },
        });
        this.d.store.slaves.patch(this.stack, slave.name, { update_request_id: req.id });
        return;
      }
      if (rec.update_target === master && rec.next_update_at && Date.parse(rec.next_update_at) > Date.now()) return;
      await this.update(slave, 'behind');
      return;
    }
    if (rec.drift === 'ahead' || rec.drift === 'diverged') {
      const key = `${rec.drift}:${rec.commit}:${master}`;
      if (rec.update_target === key) return;
      const req = this.d.store.requests.create({
        type: 'STRATEGIC_DECISION', priority: 'normal', created_by: 'master',
        title: `${slave.name} is ${rec.drift} of the master (${shortCommit(rec.commit)} vs ${shortCommit(master)})`,
        description: `The master never downgrades a slave automatically. Update the master's checkout, or approve to redeploy ${slave.name} with the master's commit ${shortCommit(master)}.`,
        action: { kind: 'update', slave: slave.name, stack: this.stack, target_commit: master },
      });
      this.d.store.slaves.patch(this.stack, slave.name, { update_target: key, update_request_id: req.id });
    }
  }

  /** Redeploys a slave and checks it then reports the master's commit; failures back off. */
  async update(slave: SlaveConfig, reason: string): Promise<ControlResult> {
    const t = this.d.tuning;
    const master = this.d.version.current.commit;
    const rec = this.d.store.slaves.getOrEmpty(this.stack, slave.name);
    const attempt = rec.update_target === master ? rec.update_attempts + 1 : 1;
    this.d.store.slaves.patch(this.stack, slave.name, { update_target: master, update_attempts: attempt });
    const result = await this.d.deploys.deploy(slave, { force: true, reason });
    await this.awaitAgent(slave, result.ok ? t.settleMs : 0, (h) => h.commit === master);
    const checked = await this.checkAndRecord(slave, master);
    if (result.ok && checked.commit === master && (checked.state === 'healthy')) {
      this.d.store.db.transaction(() => {
        this.d.store.slaves.patch(this.stack, slave.name, { update_attempts: 0, next_update_at: null });
        this.d.store.outbox.enqueue({
          kind: 'update_done', stack: this.stack, slave: slave.name,
          title: `✅ ${slave.name} updated to ${shortCommit(master)}`,
          text: `${slave.name} was ${shortCommit(rec.commit)} and now reports ${shortCommit(master)} (${result.strategy ?? checked.strategy ?? '?'}).`,
          data: { master_commit: master, slave_commit: checked.commit, strategy: result.strategy, build_log_path: result.buildLogPath, engine: result.engine },
        });
      }).immediate();
      return { ok: true, action: 'update', message: `${slave.name} now reports ${shortCommit(master)}`, state: checked.state, commit: checked.commit, build_log_path: result.buildLogPath };
    }
    const error = result.ok ? `after the deploy ${slave.name} reports ${shortCommit(checked.commit)}, not the master's ${shortCommit(master)}` : (result.error ?? 'deploy failed');
    const next = now() + backoffDelay(attempt, { baseMs: t.updateBackoffMs, maxMs: t.updateBackoffMaxMs, jitter: 0.1 });
    this.d.store.db.transaction(() => {
      this.d.store.slaves.patch(this.stack, slave.name, { next_update_at: nowIso(next) });
      this.d.store.outbox.enqueue({
        kind: 'update_failed', stack: this.stack, slave: slave.name,
        title: `❌ update of ${slave.name} to ${shortCommit(master)} failed (attempt ${attempt})`,
        text: `${tail(error)}\nNext automatic attempt not before ${nowIso(next)}.${result.buildLogPath ? `\nBuild log: ${result.buildLogPath}` : ''}`,
        data: { master_commit: master, slave_commit: checked.commit, error_tail: tail(error), build_log_path: result.buildLogPath, attempt, engine: result.engine },
      });
    }).immediate();
    return { ok: false, action: 'update', message: error, state: checked.state, commit: checked.commit, build_log_path: result.buildLogPath };
  }

  /** `d8 retry`: recovers a down slave, updates a mismatched one, re-checks a healthy one. */
  async retry(name: string): Promise<ControlResult> {
    const slave = findSlave(this.d.config, name);
    const running = this.busy.get(name);
    if (running) {
      this.log.info({ slave: name }, 'retry: a recovery or update of this slave is running; waiting for it');
      const r = await running;
      if (r.ok && r.action !== 'none') return r;
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

  /** An explicit update (an approved request, `/update`): redeploys whatever the drift. */
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

const now = (): number => Date.now();
