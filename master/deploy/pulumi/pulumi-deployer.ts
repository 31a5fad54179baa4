/**
 * The pulumi deployer: Automation API on the repository (LocalWorkspace, the stack's own
 * Pulumi.<stack>.yaml), one targeted `up` per deploy (see up-options.ts). Operations on a stack are
 * serialized in-process; a ConcurrentUpdateError is retried with backoff, and a lock that outlives
 * its holder is cancelled only after stale-lock.ts found the holder gone.
 */
import { LocalWorkspace, ConcurrentUpdateError, type Stack } from '@pulumi/pulumi/automation';
import type { Logger } from '../../../core/logger';
import { fleetRedactor } from '../../../core/fleet-secrets';
import type { Redactor } from '../../../core/redact';
import { BuildLog } from '../build-log';
import type { FleetConfig, SlaveConfig } from '../../../core/stack-config';
import { StrategySchema } from '../../../core/protocol';
import { backoffDelay, type BackoffOptions } from '../../backoff';
import { AgentClient } from '../../agent-client';
import type { Deployer, DeployOptions, DeployResult } from '../deployer';
import { targetedUpOptions } from './up-options';
import { serialize } from './stack-queue';
import { fileBackendDir, findLockFiles, judgeLock, type LockVerdict } from './stale-lock';

export interface PulumiDeployerOptions {
  stack: string;
  repoDir: string;
  config: FleetConfig;
  logger: Logger;
  /** Attempts on ConcurrentUpdateError (the first included). */
  lockAttempts?: number;
  lockBackoff?: BackoffOptions;
  /** Cloud backends: whether our own record shows the last update of this stack died with its process. */
  ownCrashedUpdate?: () => boolean;
}

export class PulumiDeployer implements Deployer {
  readonly engine = 'pulumi' as const;
  private readonly redactor: Redactor;

  constructor(private readonly opts: PulumiDeployerOptions) {
    this.redactor = fleetRedactor(opts.config);
  }

  deploy(slave: SlaveConfig, opts: DeployOptions): Promise<DeployResult> {
    return serialize(`${this.opts.repoDir}::${this.opts.stack}`, () => this.run(slave, opts));
  }

  private async run(slave: SlaveConfig, opts: DeployOptions): Promise<DeployResult> {
    const started = Date.now();
    const lines: string[] = [];
    const log = this.opts.logger.child({ slave: slave.name, engine: 'pulumi' });
    const upOpts = targetedUpOptions(this.opts.stack, slave);
    let error: string | null = null;
    let strategy: DeployResult['strategy'] = null;
    try {
      const stack = await LocalWorkspace.selectStack({ stackName: this.opts.stack, workDir: this.opts.repoDir });
      const onOutput = (out: string): void => {
        const clean = this.redactor.text(out);
        lines.push(clean);
        for (const l of clean.split('\n')) if (l.trim()) log.info({ pulumi: l.trimEnd() }, 'pulumi');
      };
      const attempts = this.opts.lockAttempts ?? 5;
      for (let attempt = 1; ; attempt++) {
        try {
          const r = await stack.up({ ...upOpts, onOutput, color: 'never', message: `d8: ${opts.reason} ${slave.name}` });
          strategy = strategyFromOutputs(r.outputs as Record<string, { value: unknown }>, slave.name);
          break;
        } catch (err) {
          if (!(err instanceof ConcurrentUpdateError)) throw err;
          const verdict = await this.judge(stack);
          if (verdict.stale) {
            log.warn({ why: verdict.why, lock: verdict.lock?.file }, 'the stack lock is stale: cancelling it');
            await stack.cancel();
            continue;
          }
          if (attempt >= attempts) throw new Error(`stack ${this.opts.stack} is locked by another update (${verdict.why}); ` +
            'wait for it, or if you are sure nothing runs, `pulumi cancel --stack ' + this.opts.stack + '`');
          const delay = backoffDelay(attempt, this.opts.lockBackoff ?? { baseMs: 5000, maxMs: 60_000, jitter: 0.2 });
          log.info({ attempt, retry_in_ms: delay, why: verdict.why }, 'stack is locked by another update: retrying');
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    } catch (err) {
      error = pulumiErrorSummary(this.redactor.text((err as Error).message ?? String(err)));
    }
    let commit: string | null = null;
    if (!error) {
      const client = new AgentClient({ deadlineMs: 10_000 });
      const h = await client.health(slave);
      client.close();
      commit = h.ok ? h.health.commit : null;
      if (!strategy && h.ok) strategy = h.health.install_strategy;
    }
    const buildLogPath = this.writeBuildLog(slave, opts, { ok: !error, strategy, error, commit, lines, upOpts });
    return {
      slave: slave.name, engine: 'pulumi', status: error ? 'failed' : 'deployed', ok: !error, strategy, attempts: [], commit, buildLogPath,
      error, errorKind: error ? 'engine' : null, durationMs: Date.now() - started,
    };
  }

  private async judge(stack: Stack): Promise<LockVerdict> {
    let url: string | undefined = process.env.PULUMI_BACKEND_URL;
    try { url = (await stack.workspace.whoAmI()).url ?? url; } catch { /* keep env */ }
    const dir = fileBackendDir(url);
    if (dir) {
      const locks = findLockFiles(dir, this.opts.stack);
      if (locks.length === 0) return { stale: false, why: 'no lock file found (it was just released)' };
      const verdicts = locks.map((l) => judgeLock(l));
      return verdicts.every((v) => v.stale) ? verdicts[0] : verdicts.find((v) => !v.stale)!;
    }
    if (this.opts.ownCrashedUpdate?.()) return { stale: true, why: 'the last update of this stack was ours and its process is gone' };
    return { stale: false, why: `backend ${url ?? 'unknown'}: the holder cannot be inspected` };
  }

  private writeBuildLog(slave: SlaveConfig, opts: DeployOptions, r: { ok: boolean; strategy: DeployResult['strategy']; error: string | null; commit: string | null; lines: string[]; upOpts: object }): string | null {
    try {
      const log = new BuildLog({ name: slave.name, host: slave.host }, 'pulumi', opts.reason, this.redactor);
      log.record({ command: `pulumi up --stack ${this.opts.stack} ${JSON.stringify(r.upOpts)}`, success: r.ok, stdout: r.lines.join(''), stderr: r.error ?? '', exit_code: r.ok ? 0 : 1 });
      return log.write(log.document({ status: r.ok ? 'success' : 'failed', strategy: r.strategy, error: r.error, commit: r.commit, bundleHash: null, attempts: [] }));
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'could not write the build log');
      return null;
    }
  }
}

/** The slave's winning strategy from the stack outputs (the program exports it per slave). */
export function strategyFromOutputs(outputs: Record<string, { value: unknown }>, slave: string): DeployResult['strategy'] {
  const candidates: unknown[] = [];
  for (const [k, v] of Object.entries(outputs ?? {})) {
    const val = v?.value;
    if (k === 'strategies' && val && typeof val === 'object') candidates.push((val as Record<string, unknown>)[slave]);
    if (k === `${slave}Strategy` || k === `${slave}-strategy` || k === `strategy-${slave}`) candidates.push(val);
    if (k === 'slaves' && val && typeof val === 'object') {
      const s = (val as Record<string, unknown>)[slave];
      if (s && typeof s === 'object') candidates.push((s as Record<string, unknown>).strategy);
    }
  }
  for (const c of candidates) {
    const p = StrategySchema.safeParse(c);
    if (p.success) return p.data;
  }
  return null;
}

/**
 * What went wrong, from a failed `pulumi up`'s text: its Diagnostics section (the resource errors,
 * e.g. the command that failed and its stderr), not the tail, which is the outputs and counts.
 */
export function pulumiErrorSummary(text: string, maxLines = 30): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^\s*Diagnostics:\s*$/.test(l));
  if (start >= 0) {
    const end = lines.findIndex((l, i) => i > start && /^\s*(Outputs|Resources|Duration):/.test(l));
    const diag = lines.slice(start + 1, end < 0 ? undefined : end).filter((l) => l.trim() !== '');
    if (diag.some((l) => /error/i.test(l))) return diag.slice(0, maxLines).join('\n');
  }
  return lines.filter((l) => l.trim() !== '').slice(-maxLines).join('\n');
}
