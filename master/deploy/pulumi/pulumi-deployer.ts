/**
 * The pulumi deployer: Automation API on the repository (LocalWorkspace, the stack's own
 * Pulumi.<stack>.yaml), one targeted `up` per deploy (see up-options.ts). Operations on a stack are
 * serialized in-process; a ConcurrentUpdateError is retried with backoff, and a lock that outlives
 * its holder is cancelled only after stale-lock.ts found the holder gone.
 */
import fs from 'fs';
import { ConcurrentUpdateError, LocalWorkspace, StackNotFoundError, type EngineEvent, type Stack } from '@pulumi/pulumi/automation';
import { readBundle, type BundleInfo } from '../../../agent/bundle/build';
import { BUNDLE_DIR_ENV, SLAVE_BUNDLES_ENV } from '../../../core/release-env';
import { CheckoutBundle } from '../checkout-bundle';
import type { Logger } from '../../../core/logger';
import { fleetRedactor } from '../../../core/fleet-secrets';
import type { Redactor } from '../../../core/redact';
import { BuildLog } from '../build-log';
import type { FleetConfig, SlaveConfig } from '../../../core/stack-config';
import { StrategySchema } from '../../../core/protocol';
import { DeployError, type DeployErrorKind, type DeployStatus } from '../../../core/deploy-result';
import { InstallResultSchema, type InstallAttempt, type InstallResult } from '../../../core/install-result';
import { installTimeoutSeconds } from '../../../infra/fleet';
import { deployUnit, slaveUrns } from '../../../infra/urns';
import {
  DeployConfigError, DeployTimeoutError, HostUnsupportedError, RemoteCommandError, SlaveConnectError, deployErrorKind,
} from '../direct/errors';
import { PROBED_RUNTIMES_ENV, type ProbedRuntimes } from '../../../core/host-probe';
import { prepareHost } from './host-prep';
import { firstUseMessage } from '../host-trust';
import { slaveTokens } from '../../agent-tokens';
import { KnownHosts } from '../../../core/known-hosts';
import { expectedHostKey } from '../../../infra/ssh-connection';
import { openStack } from './open-stack';
import { backoffDelay, type BackoffOptions } from '../../backoff';
import { AgentClient } from '../../agent-client';
import type { Deployer, DeployOptions, DeployProgress, DeployResult } from '../deployer';
import { targetedUpOptions, upOptionsFor, type TargetedUpOptions } from './up-options';
import { settleSwarm, swarmRecordedPins, type SwarmSettleOptions } from './swarm-settle';
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
  /** Swarm mode: how to reach the manager's docker and how long to wait for convergence. */
  swarm?: SwarmSettleOptions;
  /** The probe's verdict and the base image's path, as they happen (`d8 up` prints them). */
  onProgress?: (p: DeployProgress) => void;
  /** For D8_HOME (the image cache) and the master's docker CLI (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** The recorded certificate pins (store.pins.lookup(stack)), for the up-to-date check before a deploy. */
  pins?: (slave: string) => string | null;
}

export class PulumiDeployer implements Deployer {
  readonly engine = 'pulumi' as const;
  private readonly redactor: Redactor;
  private readonly checkout: CheckoutBundle;
  /**
   * Per-host mode: the bundle a deploy without a given one installs (D8_BUNDLE_DIR, else built from
   * the checkout). The program gets it, and a given bundle (a kept release) for the targeted slave,
   * through the environment (core/release-env.ts). Swarm mode has none: one image serves every slave.
   */
  readonly bundle?: () => Promise<BundleInfo>;

  constructor(private readonly opts: PulumiDeployerOptions) {
    this.redactor = fleetRedactor(opts.config);
    this.checkout = new CheckoutBundle(opts.repoDir, opts.config.requirements);
    if (!opts.config.swarm) this.bundle = () => this.fleetBundle();
  }

  private async fleetBundle(): Promise<BundleInfo> {
    const prebuilt = (this.opts.env ?? process.env)[BUNDLE_DIR_ENV]?.trim();
    // The real directory: a release is kept (copied) from it, and a link may point elsewhere later.
    if (prebuilt) return readBundle(fs.existsSync(prebuilt) ? fs.realpathSync(prebuilt) : prebuilt);
    return this.checkout.get();
  }

  async recordedPins(slaves: readonly string[]): Promise<Record<string, string>> {
    if (this.opts.config.swarm) return swarmRecordedPins(this.opts.config, slaves, this.opts.swarm);
    let stack: Stack;
    try {
      stack = await LocalWorkspace.selectStack({ stackName: this.opts.stack, workDir: this.opts.repoDir });
    } catch (err) {
      if (err instanceof StackNotFoundError) return {};
      throw err;
    }
    const outputs = await stack.outputs();
    const pins: Record<string, string> = {};
    for (const name of slaves) {
      const fingerprint = installResultFromOutputs(outputs, name)?.tls_fingerprint;
      if (fingerprint) pins[name] = fingerprint;
    }
    return pins;
  }

  deploy(slave: SlaveConfig, opts: DeployOptions): Promise<DeployResult> {
    if (this.opts.config.swarm) return this.deploySwarm(slave, opts);
    return serialize(`${this.opts.repoDir}::${this.opts.stack}`, () => this.run(slave, opts));
  }

  private readonly swarmInFlight = new Map<boolean, Promise<DeployResult>>();
  /** Every slave's certificate from the last swarm update that converged: a joined deploy reports its own slave's. */
  private swarmPins: Record<string, string | null> | undefined;

  /**
   * Swarm mode: one update serves every slave, so deploys asked for while one runs (`d8 up` of the
   * whole fleet, the daemon updating several behind slaves) join it instead of queueing more.
   */
  private deploySwarm(slave: SlaveConfig, opts: DeployOptions): Promise<DeployResult> {
    const force = !!opts.force;
    const running = this.swarmInFlight.get(force);
    if (running) return running.then((r) => ({ ...r, slave: slave.name, tlsFingerprint: r.tlsFingerprint === undefined ? undefined : this.swarmPins?.[slave.name] }));
    const p = serialize(`${this.opts.repoDir}::${this.opts.stack}`, () => this.run(slave, opts))
      .finally(() => this.swarmInFlight.delete(force));
    this.swarmInFlight.set(force, p);
    return p;
  }

  private async run(slave: SlaveConfig, opts: DeployOptions): Promise<DeployResult> {
    const started = Date.now();
    const lines: string[] = [];
    const log = this.opts.logger.child({ slave: slave.name, engine: 'pulumi' });
    const urns = slaveUrns(this.opts.stack, slave.name, { local: slave.local });
    let upOpts: TargetedUpOptions | null = null;
    let error: string | null = null;
    let errorKind: DeployErrorKind | null = null;
    let status: DeployStatus = 'failed';
    let strategy: DeployResult['strategy'] = null;
    let attempts: InstallAttempt[] = [];
    let tlsFingerprint: string | null | undefined;
    const installDiagnostics: string[] = [];
    const buildLog = new BuildLog({ name: slave.name, host: slave.host }, 'pulumi', opts.reason, this.redactor);
    let release: BundleInfo | null = null;
    try {
      const swarm = this.opts.config.swarm !== undefined;
      // Probe, base image, and which runtime the program ships; a refused host never reaches the engine.
      // Swarm mode: nothing is installed over SSH on the slave; the manager is reached by the program.
      const runtimes: ProbedRuntimes = swarm ? {} : await prepareHost({
        slave, config: this.opts.config, env: this.opts.env, log: buildLog,
        progress: (phase, message) => {
          this.opts.onProgress?.({ slave: slave.name, phase, message });
          log.info({ phase }, message);
        },
        onFirstUse: (key) => {
          const message = firstUseMessage(slave, key);
          lines.push(`${message}\n`);
          log.warn({ fingerprint: key.fingerprint }, message);
        },
      });
      const stack = await openStack(this.opts.stack, this.opts.repoDir);
      // Empty, not absent, when none: a value in this process's own environment must not leak into the program.
      stack.workspace.envVars[PROBED_RUNTIMES_ENV] = Object.keys(runtimes).length ? JSON.stringify(runtimes) : '';
      if (swarm) {
        const deployment = (await stack.exportStack()).deployment as { resources?: Array<{ urn: string }> } | undefined;
        const existing = new Set((deployment?.resources ?? []).map((r) => r.urn));
        upOpts = upOptionsFor(deployUnit(this.opts.stack, slave.name, { swarm, local: slave.local, slaves: this.opts.config.slaves.map((s) => s.name) }), { existing });
      } else {
        const fleet = await this.fleetBundle();
        release = opts.bundle ?? fleet;
        stack.workspace.envVars[BUNDLE_DIR_ENV] = fleet.dir;
        stack.workspace.envVars[SLAVE_BUNDLES_ENV] = release.dir === fleet.dir ? '' : JSON.stringify({ [slave.name]: release.dir });
        if (release.dir !== fleet.dir) log.info({ commit: release.versionInfo.commit, dir: release.dir }, `${slave.name} gets the release ${release.versionInfo.commit.slice(0, 7)}`);
        upOpts = await this.plan(stack, slave, opts, release);
      }
      const onOutput = (out: string): void => {
        const clean = this.redactor.text(out);
        lines.push(clean);
        for (const l of clean.split('\n')) if (l.trim()) log.info({ pulumi: l.trimEnd() }, 'pulumi');
      };
      const onEvent = (e: EngineEvent): void => {
        const d = e.diagnosticEvent;
        if (d && d.urn === urns.install && d.severity === 'error') installDiagnostics.push(d.message);
      };
      // Swarm mode: the tokens the program puts in the slaves' secrets (a rotation staged during the up is not them).
      const tokens = slaveTokens(this.opts.config);
      const staged = swarm ? new Map(this.opts.config.slaves.map((s) => [s.name, tokens.read(s.name)?.current])) : null;
      const attemptsMax = this.opts.lockAttempts ?? 5;
      for (let attempt = 1; ; attempt++) {
        try {
          const r = await stack.up({ ...upOpts, onOutput, onEvent, color: 'never', message: `d8: ${opts.reason} ${slave.name}` });
          let changed = Object.entries(r.summary.resourceChanges ?? {}).some(([op, n]) => op !== 'same' && (n ?? 0) > 0);
          if (swarm) {
            const settled = await settleSwarm(this.opts.config, r.outputs as Record<string, { value: unknown }>, { force: !!opts.force, changed }, {
              ...this.opts.swarm, onProgress: (why) => { lines.push(`convergence: ${why}\n`); log.info({ swarm: why }, 'waiting for the swarm'); },
            });
            lines.push(`convergence: ${settled.why}\n`);
            changed ||= settled.forced;
            // Read on the manager after convergence (master/deploy/swarm/agent-fingerprint.ts says why
            // that channel is trusted): recorded as the pin, replacing one a new key pair on the node made stale.
            this.swarmPins = settled.fingerprints;
            tlsFingerprint = settled.fingerprints[slave.name];
            // Every slave's service runs the spec the program gave its own token (infra/fleet.ts); a
            // record the program made on first use is read now.
            for (const s of this.opts.config.slaves) {
              const token = staged?.get(s.name) ?? tokens.read(s.name)?.current;
              if (token) tokens.markInstalled(s.name, token);
            }
          }
          const install = installResultFromOutputs(r.outputs as Record<string, { value: unknown }>, slave.name);
          status = changed ? 'deployed' : 'up_to_date';
          // The program gave the install the slave's own token (infra/fleet.ts): now on the agent.
          if (changed && install?.ok) {
            const current = tokens.read(slave.name)?.current;
            if (current) tokens.markInstalled(slave.name, current);
          }
          strategy = install?.strategy ?? strategyFromOutputs(r.outputs as Record<string, { value: unknown }>, slave.name);
          // The stack's outputs keep the last install's result: its certificate is the one the agent serves.
          if (install?.ok && !swarm) tlsFingerprint = install.tls_fingerprint ?? null;
          if (changed && install) attempts = install.attempts;
          break;
        } catch (err) {
          if (!(err instanceof ConcurrentUpdateError)) throw err;
          const verdict = await this.judge(stack);
          if (verdict.stale) {
            log.warn({ why: verdict.why, lock: verdict.lock?.file }, 'the stack lock is stale: cancelling it');
            await stack.cancel();
            continue;
          }
          if (attempt >= attemptsMax) {
            throw new DeployError(`stack ${this.opts.stack} is locked by another update (${verdict.why}); ` +
              'wait for it, or if you are sure nothing runs, `pulumi cancel --stack ' + this.opts.stack + '`', 'engine');
          }
          const delay = backoffDelay(attempt, this.opts.lockBackoff ?? { baseMs: 5000, maxMs: 60_000, jitter: 0.2 });
          log.info({ attempt, retry_in_ms: delay, why: verdict.why }, 'stack is locked by another update: retrying');
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    } catch (err) {
      // The install's own diagnostics; else the CLI's text (a targeted up runs only this slave's resources).
      const failed = installResultFromText(installDiagnostics.join('\n')) ?? installResultFromText((err as Error).message ?? '');
      if (failed) {
        attempts = failed.attempts;
        strategy = failed.strategy;
      }
      error = err instanceof DeployError || isDirectError(err)
        ? this.redactor.text((err as Error).message)
        : pulumiErrorSummary(this.redactor.text((err as Error).message ?? String(err)));
      errorKind = pulumiErrorKind(err, {
        installFailed: failed !== null && !failed.ok,
        timedOut: Date.now() - started >= installTimeoutSeconds(slave, this.opts.config) * 1000,
      });
    }
    let commit: string | null = null;
    if (!error) {
      const client = new AgentClient({ deadlineMs: 10_000, pins: this.opts.pins });
      const h = await client.health(tlsFingerprint === undefined ? slave : { ...slave, tlsFingerprint });
      client.close();
      commit = h.ok ? h.health.commit : null;
      if (!strategy && h.ok) strategy = h.health.install_strategy;
    }
    const buildLogPath = this.writeBuildLog(buildLog, { status, strategy, attempts, error, commit, lines, upOpts, bundleHash: release?.hash ?? null });
    return {
      slave: slave.name, engine: 'pulumi', status, ok: status !== 'failed', strategy, attempts, commit, buildLogPath,
      error, errorKind: status === 'failed' ? (errorKind ?? 'engine') : null, durationMs: Date.now() - started, tlsFingerprint,
    };
  }

  /**
   * Which of the slave's resources exist, and whether to force the release's replacement: always
   * when asked (`force`, the daemon), and when the agent does not run the release the state records
   * (drift `pulumi refresh` cannot see). Otherwise the engine's diff decides: a new release changes
   * the triggers (deployed), the same one changes nothing (up to date).
   */
  private async plan(stack: Stack, slave: SlaveConfig, opts: DeployOptions, release: BundleInfo): Promise<TargetedUpOptions> {
    const deployment = (await stack.exportStack()).deployment as { resources?: Array<{ urn: string; outputs?: Record<string, unknown> }> } | undefined;
    const existing = new Set((deployment?.resources ?? []).map((r) => r.urn));
    let replace = true;
    const urns = slaveUrns(this.opts.stack, slave.name, { local: slave.local });
    const stateKey = deployment?.resources?.find((r) => r.urn === urns.component)?.outputs?.hostKey;
    const key = slave.local ? undefined : expectedHostKey(this.opts.stack, slave, this.opts.config.slaves.indexOf(slave), KnownHosts.forEnv());
    if (typeof stateKey === 'string' && key && stateKey !== key) {
      // A replace would delete with the state's connection, which the host's new key refuses: an
      // in-place update carries the trusted key into the state (and runs install.sh again).
      this.opts.logger.info({ slave: slave.name }, `${slave.name}: the stack's state holds the host key trusted before; updating its resources in place with the new one`);
      return targetedUpOptions(this.opts.stack, slave, undefined, { existing, replace: false });
    }
    if (!opts.force) {
      const client = new AgentClient({ deadlineMs: 5_000, pins: this.opts.pins });
      const h = await client.health(slave);
      client.close();
      replace = !(h.ok && h.health.commit === release.versionInfo.commit);
    }
    return targetedUpOptions(this.opts.stack, slave, undefined, { existing, replace });
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
    return { stale: false, why: `backend ${url ?? 'unknown'}: the holder cannot be inspected` };
  }

  private writeBuildLog(log: BuildLog, r: {
    status: DeployStatus; strategy: DeployResult['strategy']; attempts: InstallAttempt[]; error: string | null; commit: string | null;
    lines: string[]; upOpts: TargetedUpOptions | null; bundleHash: string | null;
  }): string | null {
    try {
      const ok = r.status !== 'failed';
      log.record({ command: `pulumi up --stack ${this.opts.stack} ${JSON.stringify(r.upOpts ?? {})}`, success: ok, stdout: r.lines.join(''), stderr: r.error ?? '', exit_code: ok ? 0 : 1 });
      return log.write(log.document({
        status: r.status === 'deployed' ? 'success' : r.status, strategy: r.strategy, error: r.error, commit: r.commit, bundleHash: r.bundleHash, attempts: r.attempts,
      }), this.opts.env);
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

/** install.sh's JSON result for the slave from the stack outputs (the program exports `installs`). */
export function installResultFromOutputs(outputs: Record<string, { value: unknown }>, slave: string): InstallResult | null {
  const installs = outputs?.installs?.value;
  if (!installs || typeof installs !== 'object') return null;
  const parsed = InstallResultSchema.safeParse((installs as Record<string, unknown>)[slave]);
  return parsed.success ? parsed.data : null;
}

/**
 * install.sh's JSON result inside a failed install's output (the provider's error carries the
 * command's stdout and stderr): the last line that is a valid result.
 */
export function installResultFromText(text: string): InstallResult | null {
  const lines = text.split('\n').map((l) => l.trim());
  for (let i = lines.length - 1; i >= 0; i--) {
    const at = lines[i].indexOf('{"ok":');
    if (at < 0) continue;
    try {
      const parsed = InstallResultSchema.safeParse(JSON.parse(lines[i].slice(at)));
      if (parsed.success) return parsed.data;
    } catch { /* not this line */ }
  }
  return null;
}

/** The typed failures of the steps before the engine (SSH, probe, config): their message is the error. */
function isDirectError(err: unknown): boolean {
  return err instanceof SlaveConnectError || err instanceof DeployConfigError || err instanceof HostUnsupportedError ||
    err instanceof RemoteCommandError || err instanceof DeployTimeoutError;
}

/** The one place a pulumi deploy's failure becomes an error kind. */
export function pulumiErrorKind(err: unknown, seen: { installFailed: boolean; timedOut: boolean }): DeployErrorKind {
  if (err instanceof DeployError) return err.kind;
  if (isDirectError(err)) return deployErrorKind(err);
  if (seen.installFailed) return 'install_failed';
  if (seen.timedOut) return 'timeout';
  return 'engine';
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
