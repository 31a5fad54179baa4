/**
 * Runs a task on whichever slave fits (issue 18): builds the candidates from the stack config, the
 * store (state, drift, running deploys, recent latency) and a fresh /api/health of each agent
 * (both shared for `healthTtlMs` between concurrent tasks), lets `choose` pick, and sends the task there.
 * While every fit slave is full the task waits (up to `queueTimeoutMs`). An agent that answers 429
 * never started the task, so another choice is made; a slave that fails mid-task is not retried
 * unless the caller said the task is idempotent (`retry_on_other`).
 */
import type { Logger } from '../../core/logger';
import { ExecuteRequestSchema } from '../../core/protocol';
import { ConfigError, type FleetConfig } from '../../core/stack-config';
import { RoutedTaskRequestSchema, type RoutedTaskRequest, type RoutedTaskResult, type Unfit } from '../../core/tasks';
import { AgentCallError, AgentClient } from '../agent-client';
import { withAgentToken } from '../agent-tokens';
import type { Store } from '../store';
import { NO_HEALTH, choose, type Candidate } from './choose';

export class NoFitError extends Error {
  constructor(readonly needs: string[], readonly unfit: Unfit[]) {
    super(`no slave fits this task${needs.length ? ` (needs ${needs.join(', ')})` : ''}: ` +
      (unfit.length ? unfit.map((u) => `${u.slave} lacks ${u.missing.join(', ')}`).join('; ') : 'the stack has no slaves'));
    this.name = 'NoFitError';
  }
}

export class AllBusyError extends Error {
  constructor(readonly fit: string[], waitedMs: number) {
    super(`every slave that fits (${fit.join(', ')}) stayed at its concurrency limit for ${Math.round(waitedMs / 1000)} s; try again later`);
    this.name = 'AllBusyError';
  }
}

/** The chosen slave failed while running the task; it was not sent elsewhere. */
export class TaskFailedError extends Error {
  constructor(readonly slave: string, readonly why: string, cause: string, readonly failed: Array<{ slave: string; error: string }>) {
    super(`the task failed on ${slave} (${cause}); it was not retried elsewhere${failed.length > 1 ? ` (also failed on ${failed.slice(0, -1).map((f) => f.slave).join(', ')})` : ''}: ` +
      'pass retry_on_other (d8 exec --retry-on-other) for an idempotent task');
    this.name = 'TaskFailedError';
  }
}

export interface TaskRouterOptions {
  config: FleetConfig;
  store: Store;
  logger: Logger;
  client?: AgentClient;
  healthTtlMs?: number;
  queueTimeoutMs?: number;
}

const LATENCY_CHECKS = 10;
const HEALTH_RETRIES = 3;

export class TaskRouter {
  private readonly client: AgentClient;
  private readonly ownClient: boolean;
  private readonly inflight = new Map<string, number>();
  /** Per slave: what the store and its agent said, shared by concurrent tasks for `healthTtlMs`. */
  private readonly snapshots = new Map<string, { at: number; snap: Promise<Omit<Candidate, 'inflight'>> }>();
  private readonly waiters = new Set<() => void>();

  constructor(private readonly o: TaskRouterOptions) {
    this.ownClient = !o.client;
    // Room for health calls beside a full slave's running tasks (the default pool is 4 sockets per agent),
    // and a new connection per task: a reused one the agent closes as idle at that instant resets the
    // POST, and then nobody knows whether the task ran (seen under load with 200 concurrent tasks).
    this.client = o.client ?? new AgentClient({ attempts: 2, deadlineMs: 5000, maxSockets: 64, keepAlive: false, pins: o.store.pins.lookup(o.config.stack) });
  }

  async run(input: RoutedTaskRequest): Promise<RoutedTaskResult> {
    const { needs, retry_on_other: retryOnOther, ...rest } = RoutedTaskRequestSchema.parse(input);
    const task = ExecuteRequestSchema.parse(rest);
    const failed: Array<{ slave: string; error: string }> = [];
    const exclude = new Set<string>();
    const started = Date.now();
    let healthRetries = 0;
    for (;;) {
      const choice = choose(await this.candidates(), needs, exclude);
      if (choice.kind === 'none' && healthRetries < HEALTH_RETRIES && choice.unfit.some((u) => u.missing.length === 1 && u.missing[0] === NO_HEALTH)) {
        // A slave that lacks nothing but an answer to /api/health may be slow for a moment (a loaded host): ask it again before saying no.
        healthRetries++;
        for (const u of choice.unfit) if (u.missing[0] === NO_HEALTH) this.snapshots.delete(u.slave);
        await this.nextFinish(500);
        continue;
      }
      if (choice.kind === 'none') {
        if (failed.length) throw new TaskFailedError(failed[failed.length - 1].slave, '', failed[failed.length - 1].error, failed);
        throw new NoFitError(needs, choice.unfit);
      }
      if (choice.kind === 'all_full') {
        const waited = Date.now() - started;
        if (waited > (this.o.queueTimeoutMs ?? 120_000)) throw new AllBusyError(choice.fit, waited);
        await this.nextFinish(250);
        continue;
      }
      const slave = this.o.config.slaves.find((s) => s.name === choice.slave)!;
      this.inflight.set(slave.name, (this.inflight.get(slave.name) ?? 0) + 1);
      try {
        const result = await withAgentToken(this.o.config, slave.name, (token) => this.client.execute(slave, token, task));
        this.o.logger.info({ slave: slave.name, needs, exit_code: result.exit_code, why: choice.why }, `routed task ran on ${slave.name}`);
        return { slave: slave.name, why: choice.why, result, failed };
      } catch (err) {
        // No token for this slave: a setup problem, not the task's.
        if (err instanceof ConfigError) throw err;
        if (err instanceof AgentCallError && err.status === 429) {
          // Busy or restarting: the task did not start there. Its health is read again before choosing.
          this.snapshots.delete(slave.name);
          await this.nextFinish(100);
          continue;
        }
        const msg = (err as Error).message;
        failed.push({ slave: slave.name, error: msg });
        this.o.logger.warn({ slave: slave.name, err: msg, retry_on_other: retryOnOther }, `routed task failed on ${slave.name}`);
        if (!retryOnOther) throw new TaskFailedError(slave.name, choice.why, msg, failed);
        exclude.add(slave.name);
        this.snapshots.delete(slave.name);
      } finally {
        this.inflight.set(slave.name, (this.inflight.get(slave.name) ?? 1) - 1);
        // Its running count just changed: read it again rather than wait out the snapshot.
        this.snapshots.delete(slave.name);
        for (const w of [...this.waiters]) w();
      }
    }
  }

  close(): void {
    if (this.ownClient) this.client.close();
  }

  private nextFinish(maxMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => { clearTimeout(t); this.waiters.delete(done); resolve(); };
      const t = setTimeout(done, maxMs);
      this.waiters.add(done);
    });
  }

  private async candidates(): Promise<Candidate[]> {
    return Promise.all(this.o.config.slaves.map(async (s) => ({ ...(await this.snapshot(s.name)), inflight: this.inflight.get(s.name) ?? 0 })));
  }

  private snapshot(name: string): Promise<Omit<Candidate, 'inflight'>> {
    const hit = this.snapshots.get(name);
    if (hit && Date.now() - hit.at < (this.o.healthTtlMs ?? 250)) return hit.snap;
    const snap = this.read(name);
    this.snapshots.set(name, { at: Date.now(), snap });
    return snap;
  }

  private async read(name: string): Promise<Omit<Candidate, 'inflight'>> {
    const { config, store } = this.o;
    const s = config.slaves.find((x) => x.name === name)!;
    const rec = store.slaves.get(config.stack, name);
    const lat = store.slaves.history(config.stack, name, LATENCY_CHECKS).map((h) => h.latency_ms).filter((x): x is number => x !== null);
    const deploying = store.deploys.list(config.stack, name, 1)[0]?.status === 'running';
    const health = await this.client.health(s).then((r) => (r.ok ? r.health : null), () => null);
    return {
      name,
      state: rec?.state ?? 'unknown',
      // An agent whose commit changed since the last check is judged again at the next one.
      drift: rec && health && health.commit !== rec.commit ? 'unknown' : rec?.drift ?? 'unknown',
      deploying,
      labels: s.labels ?? [],
      health,
      latencyMs: lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : null,
    };
  }
}
