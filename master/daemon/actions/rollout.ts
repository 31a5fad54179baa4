/**
 * The rollout (issue 14), effectful half: after each sweep it keeps what the checks proved (a slave's
 * last good release), starts a rollout when the master's commit has behind slaves, and runs the steps
 * the pure gate (master/rollout/gate.ts) decides: deploy a stage, watch its health gate, roll a failed
 * slave back to its last good release, halt with one alert and one request, finish. Every step is
 * written to the store before the next, so a master killed mid-rollout resumes from its stage.
 */
import path from 'path';
import type { SlaveConfig } from '../../../core/stack-config';
import type { BundleInfo } from '../../../agent/bundle/build';
import { rolloutHoldsSlaves, type Rollout } from '../../../core/rollout';
import { shortCommit } from '../../../core/version-info';
import { tail } from '../../../core/text';
import type { SlaveRecord } from '../../store/slaves';
import { nowIso } from '../../store/db';
import type { ReleaseHooks } from '../../deploy/coordinator';
import { planRollout } from '../../rollout/plan';
import { decideRollout, type RolloutStep, type SeenSlave } from '../../rollout/gate';
import { ReleaseArchive } from '../../rollout/release-archive';
import type { Action } from '../policy';
import type { ActionContext } from './context';

/** Member states during which the slave belongs to the rollout, not to the per-slave policy. */
const IN_GATE = new Set(['updating', 'gate', 'failed']);

export class RolloutRunner implements ReleaseHooks {
  readonly archive: ReleaseArchive;

  constructor(
    private readonly ctx: ActionContext,
    /** Runs a slave's task in the supervisor's per-slave queue (one task per slave at a time). */
    private readonly track: (slave: string, task: () => Promise<void>) => void,
    private readonly busy: () => ReadonlySet<string>,
    /**
     * Asks for a sweep at a time. The rollout advances after sweeps; without this each of its steps
     * (deploy, gate, pass, next stage) waited for the next full sweep, 30 s apart by default.
     */
    private readonly wakeAt: (at: number) => void = () => undefined,
  ) {
    this.archive = new ReleaseArchive({ stack: ctx.stack, store: ctx.store, home: path.dirname(ctx.store.file), logger: ctx.log });
    this.enabled = ctx.config.rollout !== undefined && ctx.deploys.installsGivenBundles;
    if (ctx.config.rollout && !this.enabled) {
      ctx.log.warn(`d8:rollout is set, but the ${ctx.deploys.engine} deployer cannot deploy one slave's kept release${ctx.config.swarm ? ' (swarm mode: one image serves every slave)' : ''}: behind slaves are updated one by one`);
    }
  }

  private readonly enabled: boolean;

  /** The rollout of the master's commit that still decides for its slaves, if any. */
  held(): Rollout | null {
    if (!this.enabled) return null;
    const r = this.ctx.store.rollouts.forCommit(this.ctx.stack, this.ctx.masterCommit());
    return r && rolloutHoldsSlaves(r.status) ? r : null;
  }

  /**
   * The per-slave policy's actions, minus what the rollout does instead: automatic updates (until the
   * rollout of the master's commit is over; stragglers are then updated one by one), and anything
   * about a slave in its gate.
   */
  filter(slave: string, actions: Action[]): Action[] {
    if (!this.enabled) return actions;
    const r = this.ctx.store.rollouts.forCommit(this.ctx.stack, this.ctx.masterCommit());
    if (r && !rolloutHoldsSlaves(r.status)) return actions;
    const m = r?.members.find((x) => x.slave === slave);
    if (m && IN_GATE.has(m.status)) return [];
    return actions.filter((a) => a.kind !== 'update');
  }

  // ReleaseHooks: a slave the rollout holds back (not reached yet, rolled back) is redeployed with its good release.
  bundleFor(slave: SlaveConfig): BundleInfo | null {
    const r = this.held();
    const m = r?.members.find((x) => x.slave === slave.name);
    if (!r || !m || m.status === 'passed' || m.status === 'gate' || m.status === 'updating') return null;
    const good = this.ctx.store.releases.slave(this.ctx.stack, slave.name)?.good_commit;
    return good && good !== r.commit ? this.archive.bundleOf(good) : null;
  }

  deployed(slave: SlaveConfig, bundle: BundleInfo): void {
    this.archive.deployed(slave.name, bundle);
  }

  /** After a sweep: record good releases, answer the retry request, start or advance the rollout. */
  async afterSweep(results: SlaveRecord[], masterCommit: string, now: number): Promise<void> {
    const r = this.enabled ? this.ctx.store.rollouts.forCommit(this.ctx.stack, masterCommit) : null;
    this.recordGood(results, r);
    if (!this.enabled) return;
    if (!r) {
      await this.start(results, masterCommit);
      return;
    }
    if (r.status === 'halted') this.answerRequest(r);
    const current = this.ctx.store.rollouts.get(r.id)!;
    const seen = new Map<string, SeenSlave>(results.map((x) => [x.name, { state: x.state, commit: x.commit }]));
    // A retry sweep checks only the failing slaves: the others keep their last recorded check (not "no check").
    for (const m of current.members) {
      if (seen.has(m.slave)) continue;
      const rec = this.ctx.store.slaves.get(this.ctx.stack, m.slave);
      if (rec) seen.set(m.slave, { state: rec.state, commit: rec.commit });
    }
    const steps = decideRollout({ rollout: current, seen, busy: this.busy(), now });
    for (const s of steps) this.run(current, s);
    this.scheduleNext(current.id, steps, now);
  }

  /** The next sweep this rollout needs: now after a step that leads to another, else when its first gate ends. */
  private scheduleNext(id: number, steps: RolloutStep[], now: number): void {
    if (steps.some((s) => s.kind === 'pass' || s.kind === 'advance' || s.kind === 'fail' || s.kind === 'start_gate')) {
      this.wakeAt(now);
      return;
    }
    const r = this.ctx.store.rollouts.get(id);
    if (!r || r.status !== 'running') return;
    const ends = r.members.filter((m) => m.status === 'gate' && m.gate_since).map((m) => Date.parse(m.gate_since!) + r.policy.healthyForSeconds * 1000);
    if (ends.length) this.wakeAt(Math.max(now, Math.min(...ends)));
  }

  /** Healthy at a commit = that commit is the slave's last good release; a slave in a gate proves nothing yet. */
  private recordGood(results: SlaveRecord[], r: Rollout | null): void {
    for (const x of results) {
      if (x.state !== 'healthy' || !x.commit) continue;
      const m = r?.members.find((y) => y.slave === x.name);
      if (r && m && x.commit === r.commit && m.status !== 'passed') continue;
      const cur = this.ctx.store.releases.slave(this.ctx.stack, x.name);
      if (cur?.good_commit !== x.commit) this.ctx.store.releases.markGood(this.ctx.stack, x.name, x.commit);
    }
  }

  private async start(results: SlaveRecord[], commit: string): Promise<void> {
    const policy = this.ctx.config.rollout!;
    const byName = new Map(results.map((x) => [x.name, x]));
    const candidates = this.ctx.config.slaves.flatMap((s) => {
      const rec = byName.get(s.name);
      return rec ? [{ name: s.name, state: rec.state, drift: rec.drift, commit: rec.commit, autoUpdate: s.autoUpdate, sshKeyMissing: this.ctx.sshKeyMissing(s), rollout: s.rollout }] : [];
    });
    const plan = planRollout(candidates, policy);
    if (plan.length === 0) return;
    // The release of the new commit is kept before any slave gets it (a rollback needs the old ones kept too).
    const bundle = await this.ctx.deploys.releaseBundle();
    if (!bundle || bundle.versionInfo.commit !== commit) {
      this.ctx.log.warn({ commit }, `rollout of ${shortCommit(commit)} waits: the deployer's bundle is not that commit yet`);
      return;
    }
    this.archive.keep(bundle);
    for (const old of this.ctx.store.rollouts.list(this.ctx.stack, 5)) {
      if (old.commit !== commit) this.ctx.store.rollouts.transition(old.id, ['running', 'paused', 'halted', 'rejected'], 'aborted');
    }
    const r = this.ctx.store.rollouts.create(this.ctx.stack, commit, policy, plan);
    this.wakeAt(Date.now()); // its canary starts at the next sweep: now, not an interval later
    this.ctx.log.info({ rollout: r.id, commit, plan }, `rollout ${r.id} of ${shortCommit(commit)}: ${plan.length} slave(s), canary ${plan.filter((p) => p.stage === 0).map((p) => p.slave).join(', ')}`);
  }

  private slave(name: string): SlaveConfig | undefined {
    return this.ctx.config.slaves.find((s) => s.name === name);
  }

  private run(r: Rollout, step: RolloutStep): void {
    const store = this.ctx.store.rollouts;
    switch (step.kind) {
      case 'deploy': {
        const slave = this.slave(step.slave);
        if (!slave) { store.setMember(r.id, step.slave, 'failed', { error: 'no longer in the stack config' }); return; }
        store.setMember(r.id, step.slave, 'updating');
        this.track(step.slave, () => this.deploy(r, slave).finally(() => this.wakeAt(Date.now())));
        return;
      }
      case 'start_gate':
        store.setMember(r.id, step.slave, 'gate', { gate_since: nowIso() });
        return;
      case 'pass':
        store.setMember(r.id, step.slave, 'passed');
        this.ctx.store.releases.markGood(this.ctx.stack, step.slave, r.commit);
        this.ctx.log.info({ rollout: r.id, slave: step.slave }, `rollout ${r.id}: ${step.slave} passed the health gate at ${shortCommit(r.commit)}`);
        return;
      case 'fail':
        this.fail(r, step.slave, step.why);
        return;
      case 'rollback': {
        const slave = this.slave(step.slave);
        if (slave) this.track(step.slave, () => this.rollback(r, slave).finally(() => this.wakeAt(Date.now())));
        return;
      }
      case 'advance':
        store.setStatus(r.id, 'running', { stage: step.stage });
        this.ctx.log.info({ rollout: r.id, stage: step.stage }, `rollout ${r.id}: stage ${step.stage} starts`);
        return;
      case 'complete': {
        this.ctx.store.db.transaction(() => {
          if (!store.transition(r.id, ['running'], 'done')) return;
          this.ctx.store.outbox.enqueue({
            kind: 'rollout_done', stack: this.ctx.stack, slave: null,
            data: { commit: r.commit, slaves: r.members.filter((m) => m.status === 'passed').map((m) => m.slave), seconds: (Date.now() - Date.parse(r.created_at)) / 1000 },
          });
        }).immediate();
        return;
      }
    }
  }

  private async deploy(r: Rollout, slave: SlaveConfig): Promise<void> {
    const bundle = this.archive.bundleOf(r.commit);
    if (!bundle) { this.fail(r, slave.name, `the release ${shortCommit(r.commit)} is no longer kept`); return; }
    const result = await this.ctx.deploys.deploy(slave, { force: true, reason: `rollout ${shortCommit(r.commit)}`, bundle });
    if (result.ok) await this.ctx.awaitAgent(slave, this.ctx.tuning.settleMs, (h) => h.commit === r.commit);
    const checked = await this.ctx.checkAndRecord(slave, this.ctx.masterCommit());
    if (result.ok && checked.state === 'healthy' && checked.commit === r.commit) {
      this.ctx.store.rollouts.setMember(r.id, slave.name, 'gate', { gate_since: nowIso() });
      return;
    }
    this.fail(r, slave.name, result.ok ? `after the deploy it is ${checked.state} at ${shortCommit(checked.commit)}` : `the deploy failed: ${tail(result.error ?? 'unknown error', 400)}`);
  }

  private fail(r: Rollout, slave: string, why: string): void {
    this.ctx.log.warn({ rollout: r.id, slave, why }, `rollout ${r.id}: ${slave} failed: ${why}`);
    this.ctx.store.db.transaction(() => {
      const cur = this.ctx.store.rollouts.get(r.id)!;
      this.ctx.store.rollouts.setMember(r.id, slave, 'failed', { error: why });
      this.ctx.store.rollouts.setStatus(r.id, cur.status, { failures: cur.failures + 1 });
    }).immediate();
  }

  /** Redeploys the slave's last good release (never anything older, never the rollout's commit). */
  private async rollback(r: Rollout, slave: SlaveConfig): Promise<void> {
    const good = this.ctx.store.releases.slave(this.ctx.stack, slave.name)?.good_commit ?? null;
    let error: string | null = null;
    let bundle: BundleInfo | null = null;
    try {
      bundle = good && good !== r.commit ? this.archive.bundleOf(good) : null;
      if (!bundle) error = good ? `its last good release ${shortCommit(good)} is not kept` : 'it has no known good release';
    } catch (err) {
      error = (err as Error).message;
    }
    if (bundle) {
      const result = await this.ctx.deploys.deploy(slave, { force: true, reason: `rollback from ${shortCommit(r.commit)}`, bundle });
      if (result.ok) await this.ctx.awaitAgent(slave, this.ctx.tuning.settleMs, (h) => h.commit === good);
      const checked = await this.ctx.checkAndRecord(slave, this.ctx.masterCommit());
      if (!(result.ok && checked.commit === good && checked.state !== 'dead')) error = result.error ?? `after the rollback it is ${checked.state} at ${shortCommit(checked.commit)}`;
    }
    const prev = this.ctx.store.rollouts.get(r.id)!.members.find((m) => m.slave === slave.name);
    this.ctx.store.rollouts.setMember(r.id, slave.name, error ? 'rollback_failed' : 'rolled_back', { error: [prev?.error, error].filter(Boolean).join('; ') });
    this.ctx.log.warn({ rollout: r.id, slave: slave.name, to: good, error }, error ? `rollout ${r.id}: ${slave.name} could not be rolled back: ${error}` : `rollout ${r.id}: ${slave.name} rolled back to ${shortCommit(good)}`);
    this.maybeHalt(r.id);
  }

  /** Halts once the failures reach maxFailures: one alert, one request. */
  private maybeHalt(id: number): void {
    const store = this.ctx.store;
    store.db.transaction(() => {
      const r = store.rollouts.get(id)!;
      if (r.failures < r.policy.maxFailures || r.members.some((m) => m.status === 'failed')) return;
      if (!store.rollouts.transition(id, ['running', 'paused'], 'halted')) return;
      const failed = r.members.filter((m) => m.status === 'rolled_back' || m.status === 'rollback_failed');
      const untouched = r.members.filter((m) => m.status === 'pending').map((m) => m.slave);
      const req = store.requests.create({
        type: 'INFRASTRUCTURE', priority: 'high', created_by: 'master',
        title: `retry the rollout of ${shortCommit(r.commit)}?`,
        description: `The rollout of ${r.commit} on stack ${this.ctx.stack} halted at stage ${r.stage}: ` +
          failed.map((m) => `${m.slave} (${m.error ?? 'failed'})`).join('; ') +
          `. ${untouched.length ? `Not updated: ${untouched.join(', ')}. ` : ''}Approve: the rollout starts again. Reject: every slave stays on its release until the master's commit changes.`,
      });
      store.rollouts.setStatus(id, 'halted', { request_id: req.id });
      store.outbox.enqueue({
        kind: 'rollout_halted', stack: this.ctx.stack, slave: null,
        data: {
          commit: r.commit, stage: r.stage, untouched, request_id: req.id,
          failed: failed.map((m) => ({ slave: m.slave, error: m.error ?? '', rolled_back_to: this.ctx.store.releases.slave(this.ctx.stack, m.slave)?.good_commit ?? null, rollback_ok: m.status === 'rolled_back' })),
        },
      });
    }).immediate();
  }

  /** The retry request: approved → failed members start again; rejected → everything stays put. */
  private answerRequest(r: Rollout): void {
    if (!r.request_id) return;
    let status: string;
    try {
      status = this.ctx.store.requests.get(r.request_id).status;
    } catch {
      return;
    }
    const store = this.ctx.store;
    if (status === 'APPROVED') {
      store.db.transaction(() => {
        for (const m of r.members) if (m.status === 'rolled_back' || m.status === 'rollback_failed') store.rollouts.setMember(r.id, m.slave, 'pending');
        store.rollouts.setStatus(r.id, 'running', { failures: 0, request_id: null });
      }).immediate();
      store.requests.complete(r.request_id, `the rollout of ${shortCommit(r.commit)} starts again`);
      this.ctx.log.info({ rollout: r.id }, `rollout ${r.id}: retry approved (${r.request_id})`);
    } else if (status === 'REJECTED') {
      store.rollouts.transition(r.id, ['halted'], 'rejected');
      this.ctx.log.info({ rollout: r.id }, `rollout ${r.id}: retry rejected (${r.request_id}); slaves stay on their release until the master's commit changes`);
    }
  }
}
