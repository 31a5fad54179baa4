/**
 * One health check of one slave and its record: the circuit breaker decides whether the agent is
 * contacted, drift is classified from git ancestry, the state machine moves the slave's state, and
 * the result is written with its alert. Results that land in the same event-loop turn share one
 * transaction (group commit): a commit costs more than the rows in it.
 */
import type { Logger } from '../../core/logger';
import type { SlaveConfig } from '../../core/stack-config';
import type { Store } from '../store';
import { nowIso } from '../store/db';
import type { SlaveRecord } from '../store/slaves';
import type { AgentClient, HealthResult } from '../agent-client';
import { CircuitBreaker } from '../checker/breaker';
import { DriftClassifier } from '../checker/drift';
import { alertFor, nextState, type CheckOutcome } from '../checker/state-machine';
import { checkAlert, rebootSafetyAlert } from './check-alerts';
import type { Tuning } from './tuning';

export interface CheckRecorderOptions {
  stack: string;
  store: Store;
  client: AgentClient;
  logger: Logger;
  tuning: Tuning;
  repoDir: string;
}

type PendingWrite = { run: () => SlaveRecord; resolve: (r: SlaveRecord) => void; reject: (e: Error) => void };

export class CheckRecorder {
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly drift: DriftClassifier;
  /** Last check's cost per slave (ms; failures count as a full deadline), to order the next sweep. */
  private readonly lastCost = new Map<string, number>();
  private readonly pendingWrites: PendingWrite[] = [];
  /** Checks are numbered as they start; per slave, the number of the newest one recorded. */
  private startSeq = 0;
  private readonly recordedSeq = new Map<string, number>();

  constructor(private readonly o: CheckRecorderOptions) {
    this.drift = new DriftClassifier(o.repoDir);
  }

  private get stack(): string {
    return this.o.stack;
  }

  breaker(name: string): CircuitBreaker {
    let b = this.breakers.get(name);
    if (!b) {
      b = new CircuitBreaker({ failureThreshold: this.o.tuning.breakerFailures, openMs: this.o.tuning.breakerOpenMs });
      this.breakers.set(name, b);
    }
    return b;
  }

  /** What the last check of this slave cost (0 when never checked). */
  cost(name: string): number {
    return this.lastCost.get(name) ?? 0;
  }

  /**
   * One check of one slave, persisted with its alert (one transaction). `direct`: the agent is
   * contacted whatever the breaker says (the check that verifies a restart or deploy: the slave has
   * changed, and an answer closes the breaker).
   */
  async checkAndRecord(slave: SlaveConfig, masterCommit: string, opts: { direct?: boolean } = {}): Promise<SlaveRecord> {
    const now = Date.now();
    const seq = ++this.startSeq;
    const b = this.breaker(slave.name);
    let h: HealthResult;
    if (!opts.direct && !b.allow(now)) {
      h = { ok: false, error: 'circuit breaker open (not contacted)', reachable: false, latencyMs: 0 };
    } else {
      h = await this.o.client.health(slave);
      if (this.superseded(slave.name, seq)) return this.o.store.slaves.getOrEmpty(this.stack, slave.name);
      // A certificate mismatch is not the agent failing: it must not open the breaker (an open breaker reads as dead).
      if (h.ok) b.success(); else if (!h.pinMismatch) b.failure(Date.now());
      this.lastCost.set(slave.name, h.ok ? h.latencyMs : this.o.tuning.checkDeadlineMs + h.latencyMs);
    }
    let outcome: CheckOutcome;
    if (h.ok) outcome = { ok: true, commit: h.health.commit, drift: await this.drift.classify(masterCommit, h.health.commit) };
    else outcome = { ok: false, error: h.error, untrusted: !!h.pinMismatch };
    return this.record(slave, seq, masterCommit, h, outcome, b.state(Date.now()));
  }

  /**
   * Whether a check that started after check `seq` of this slave has already been recorded. Its
   * answer describes the slave as it was before: a sweep's check in flight while a deploy ends (its
   * retries spoke plain HTTP to the new agent before its certificate was pinned: ECONNRESET) must
   * not land after the deploy's verified check as a failure.
   */
  private superseded(name: string, seq: number): boolean {
    return (this.recordedSeq.get(name) ?? 0) > seq;
  }

  /**
   * Group commit: results that land in the same event-loop turn are written in one transaction
   * (a commit costs more than the rows in it), each still with its own alert decision.
   */
  private record(slave: SlaveConfig, seq: number, masterCommit: string, h: HealthResult, outcome: CheckOutcome, breaker: string): Promise<SlaveRecord> {
    return new Promise((resolve, reject) => {
      this.pendingWrites.push({ run: () => this.recordOne(slave, seq, masterCommit, h, outcome, breaker), resolve, reject });
      if (this.pendingWrites.length === 1) setImmediate(() => this.flushWrites());
    });
  }

  private flushWrites(): void {
    const batch = this.pendingWrites.splice(0);
    if (batch.length === 0) return;
    let out: SlaveRecord[];
    try {
      out = this.o.store.db.transaction(() => batch.map((b) => b.run())).immediate();
    } catch (err) {
      for (const b of batch) b.reject(err as Error);
      return;
    }
    batch.forEach((b, i) => b.resolve(out[i]));
  }

  private recordOne(slave: SlaveConfig, seq: number, masterCommit: string, h: HealthResult, outcome: CheckOutcome, breaker: string): SlaveRecord {
    const store = this.o.store;
    const now = Date.now();
    const prev = store.slaves.getOrEmpty(this.stack, slave.name);
    if (this.superseded(slave.name, seq)) {
      this.o.logger.debug({ slave: slave.name, ok: h.ok, error: h.ok ? null : h.error }, `${slave.name}: check result dropped (a newer check was recorded)`);
      return prev;
    }
    this.recordedSeq.set(slave.name, seq);
    const next = nextState(prev, outcome, { deadAfter: this.o.tuning.deadAfter });
    const rec: SlaveRecord = { ...prev, state: next.state, failures: next.failures, last_check: nowIso(now), breaker };
    if (h.ok) {
      Object.assign(rec, {
        commit: h.health.commit, branch: h.health.branch, strategy: h.health.install_strategy ?? prev.strategy,
          supervisor: h.health.supervisor, reboot_safe: h.health.supervisor === null ? null : h.health.reboot_safe,
        last_seen: nowIso(now), last_error: null, last_error_reachable: false,
        drift: outcome.ok ? outcome.drift : 'unknown',
      });
    } else {
      // An impostor is never "reachable" for recovery: nothing (no restart) is sent to it.
      Object.assign(rec, { last_error: h.error, last_error_reachable: h.reachable && !h.pinMismatch, drift: 'unknown' });
    }
    if (rec.state === 'healthy') Object.assign(rec, { recovery_attempts: 0, next_recovery_at: null, escalated: false });
    const pin = h.ok ? undefined : h.pinMismatch;
    const key = rec.state === 'version_mismatch' ? `${rec.drift}:${rec.commit}:${masterCommit}` : pin ? `${pin.expected}>${pin.presented}` : null;
    const decision = alertFor(rec.state, key, { alertKind: prev.alert_kind, alertAt: prev.alert_at ? Date.parse(prev.alert_at) : null, alertKey: prev.alert_key }, now, this.o.tuning.resendMs);
    if (decision) {
      store.outbox.enqueue(checkAlert(this.stack, decision, slave, rec, prev, masterCommit, pin), now);
      if (decision.kind === 'slave_recovered') Object.assign(rec, { alert_kind: null, alert_at: null, alert_key: null });
      else Object.assign(rec, { alert_kind: decision.kind, alert_at: nowIso(now), alert_key: key });
    } else if (rec.state === 'healthy' && prev.alert_kind) {
      Object.assign(rec, { alert_kind: null, alert_at: null, alert_key: null });
    }
    const unsafe = rebootSafetyAlert(this.stack, slave, rec, prev);
    if (unsafe) store.outbox.enqueue(unsafe, now);
    store.slaves.put(rec);
    store.slaves.addCheck(this.stack, slave.name, { ok: h.ok, latencyMs: h.latencyMs, commit: h.ok ? h.health.commit : null, error: h.ok ? null : h.error });
    if (prev.state !== rec.state) this.o.logger.info({ slave: slave.name, from: prev.state, to: rec.state, drift: rec.drift, error: rec.last_error }, `${slave.name}: ${prev.state} -> ${rec.state}`);
    return rec;
  }
}
