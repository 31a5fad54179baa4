/**
 * The direct deployer: puts the agent on a slave without a Pulumi CLI. For one slave:
 *   up to date?  → GET /api/health already reports the bundle's commit: nothing to do (unless force)
 *   connect      → node-ssh (key auth, optional host key pinning) or a local shell for `host: local`
 *   probe        → what the host is and which strategy can work (master/deploy/probe), in the build log;
 *                  a host where none can is refused before anything is written to it
 *   upload       → the bundle into a directory of its own, renamed to ~/.d8-agent/bundles/<hash16> (skipped when already there)
 *   image        → the docker strategy's base image: present, pulled, or shipped from the master (base-image.ts)
 *   runtime      → a host without a usable node gets the pinned Node.js runtime (master/runtime)
 *   install      → install.sh with the token on stdin; its progress lines are streamed as progress
 *   verify       → the master itself reaches GET /api/health and sees the bundle's commit
 * Every deploy writes a build log (secrets replaced by ***). Deploys of one slave are serialized.
 */
import crypto from 'crypto';
import path from 'path';
import { BUNDLE_HASH_FILE, type BundleInfo } from '../../../agent/bundle/build';
import { incomingBundleDir, installCommand, placeBundleCommand, remoteBundleDir, uninstallCommand } from '../../../agent/install/command';
import { parseInstallOutput, InstallOutputError, type InstallAttempt, type InstallResult } from '../../../core/install-result';
import type { Logger } from '../../../core/logger';
import { repoRoot } from '../../../core/paths';
import type { Strategy } from '../../../core/protocol';
import { fleetRedactor } from '../../../core/fleet-secrets';
import type { Redactor } from '../../../core/redact';
import { optionalAgentToken, type FleetConfig, type SlaveConfig } from '../../../core/stack-config';
import { shQuote as q } from '../../../core/shell-quote';
import { BuildLog } from '../build-log';
import { CheckoutBundle } from '../checkout-bundle';
import type { Deployer, DeployOptions, DeployPhase, DeployProgress, DeployResult } from '../deployer';
import type { DeployErrorKind, DeployStatus } from '../../../core/deploy-result';
import { AgentClient, agentBaseUrl, probeHealth, waitForHealth } from '../../agent-client';
import { DeployConfigError, HostUnsupportedError, RemoteCommandError, deployErrorKind } from './errors';
import { LocalShell, SshShell, sshTarget, type SlaveShell } from './shell';
import { withTimeout } from '../../../core/time-limit';
import { probeHost, PROBE_COMMAND_LABEL, unsupportedHost, type ProbeRun } from '../probe';
import { runtimeSource } from '../../../core/node-runtime';
import type { ProbeReport } from '../../../core/host-probe';
import { RuntimeCache } from '../../../core/runtime-cache';
import { provideRuntime } from './runtime-step';
import { slaveTokens } from '../../agent-tokens';
import { firstUseMessage } from '../host-trust';
import { baseImageStep } from '../base-image';

export type { DeployPhase, DeployProgress } from '../deployer';

export interface DirectDeployerOptions {
  config: FleetConfig;
  /** Repository the bundle is built from (default: this checkout). */
  repoDir?: string;
  logger?: Logger;
  /** For D8_HOME (build logs) and secrets to scrub (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** A prebuilt bundle, or a provider; default: built from repoDir, rebuilt when git HEAD moves. */
  bundle?: BundleInfo | (() => Promise<BundleInfo>);
  onProgress?: (p: DeployProgress) => void;
  /**
   * The recorded certificate pins (store.pins.lookup(stack)), for the up-to-date check before a
   * deploy. Without it, the fingerprints this deployer's own installs reported are used.
   */
  pins?: (slave: string) => string | null;
  /** install.sh --health-timeout (seconds per attempt). */
  healthTimeoutSeconds?: number;
  connectTimeoutMs?: number;
  /** Upper bound for the whole install.sh run (default 20 min: docker builds can be slow). */
  installTimeoutMs?: number;
  /** How long the master polls /api/health after a successful install. */
  verifyTimeoutMs?: number;
  /** The master's Node.js runtime cache (default: D8_HOME/runtimes of `env`). */
  runtimeCache?: RuntimeCache;
}

export interface UninstallResult {
  slave: string;
  ok: boolean;
  output: string;
  error: string | null;
}

export class DirectDeployer implements Deployer {
  readonly engine = 'direct' as const;
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly checkout: CheckoutBundle;
  private readonly runtimes: RuntimeCache;
  /** What this deployer's installs reported (null: plain HTTP), for callers without a store. */
  private readonly reportedPins = new Map<string, string | null>();

  constructor(private readonly opts: DirectDeployerOptions) {
    this.runtimes = opts.runtimeCache ?? new RuntimeCache({ env: opts.env });
    this.checkout = new CheckoutBundle(opts.repoDir ?? repoRoot(), opts.config.requirements);
  }

  private get env(): NodeJS.ProcessEnv {
    return this.opts.env ?? process.env;
  }

  private progress(slave: string, phase: DeployPhase, message: string): void {
    this.opts.onProgress?.({ slave, phase, message });
    this.opts.logger?.debug({ slave, phase }, message);
  }

  /** The bundle this deployer installs (built once per git HEAD unless one was given). */
  bundle(): Promise<BundleInfo> {
    const given = this.opts.bundle;
    if (typeof given === 'function') return given();
    if (given) return Promise.resolve(given);
    return this.checkout.get();
  }

  deploy(slave: SlaveConfig, opts: DeployOptions): Promise<DeployResult> {
    return this.serialized(slave.name, () => this.deployNow(slave, opts));
  }

  uninstall(slave: SlaveConfig): Promise<UninstallResult> {
    return this.serialized(slave.name, () => this.uninstallNow(slave));
  }

  private serialized<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(name) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    this.queues.set(name, run);
    void run.finally(() => { if (this.queues.get(name) === run) this.queues.delete(name); }).catch(() => undefined);
    return run;
  }

  private redactorFor(token: string | undefined): Redactor {
    return fleetRedactor(this.opts.config, this.env).with(token);
  }

  private async open(slave: SlaveConfig, log?: BuildLog): Promise<SlaveShell> {
    if (slave.local) return new LocalShell(this.env);
    return SshShell.connect(sshTarget(slave, this.opts.config, {
      readyTimeoutMs: this.opts.connectTimeoutMs,
      env: this.env,
      onFirstUse: (key) => {
        const message = firstUseMessage(slave, key);
        log?.record({ command: 'trust host key on first use', success: true, stdout: message, stderr: '', exit_code: 0 });
        this.progress(slave.name, 'connect', message);
        this.opts.logger?.warn({ slave: slave.name, fingerprint: key.fingerprint }, message);
      },
    }));
  }

  /** What the host is and which strategies can work there (the build log gets the raw probe and the verdict). */
  private async probeOn(slave: SlaveConfig, shell: SlaveShell, log: BuildLog): Promise<ProbeRun> {
    this.progress(slave.name, 'probe', `probing ${shell.where}`);
    let run: ProbeRun;
    try {
      run = await probeHost(shell, slave.strategies, runtimeSource(this.opts.config));
    } catch (err) {
      log.record({ command: PROBE_COMMAND_LABEL, success: false, stdout: '', stderr: (err as Error).message, exit_code: null });
      throw new RemoteCommandError(`${slave.name}: ${(err as Error).message}`, null);
    }
    log.record({ command: PROBE_COMMAND_LABEL, success: run.raw.code === 0, stdout: run.raw.stdout, stderr: run.raw.stderr, exit_code: run.raw.code });
    log.record({ command: 'probe verdict', success: true, stdout: JSON.stringify({ facts: run.facts, verdict: run.verdict }), stderr: '', exit_code: 0 });
    this.progress(slave.name, 'probe', run.verdict.summary);
    return run;
  }

  /** Probes the host (`d8 probe`): connects, runs the probe, disconnects. */
  async probe(slave: SlaveConfig): Promise<ProbeReport> {
    const shell = await this.open(slave);
    try {
      const run = await probeHost(shell, slave.strategies, runtimeSource(this.opts.config));
      return { slave: slave.name, where: shell.where, facts: run.facts, verdict: run.verdict };
    } finally {
      await shell.close().catch(() => undefined);
    }
  }

  /** Probes and puts the bundle on the slave; returns the bundle's absolute dir there. */
  private async stage(slave: SlaveConfig, shell: SlaveShell, bundle: BundleInfo, log: BuildLog): Promise<{ dir: string; probe: ProbeRun }> {
    const probe = await this.probeOn(slave, shell, log);
    const refused = unsupportedHost(slave.name, shell.where, probe.verdict);
    if (refused) throw refused;
    const dir = `${probe.facts.home}/${remoteBundleDir(bundle.hash)}`;
    const have = await shell.exec(`cat ${q(`${dir}/${BUNDLE_HASH_FILE}`)} 2>/dev/null`, { timeoutMs: 30000 });
    if (have.stdout.trim() === bundle.hash) {
      log.record({ command: `upload bundle to ${dir} (already there)`, success: true, stdout: '', stderr: '', exit_code: 0 });
      this.progress(slave.name, 'upload', `bundle ${bundle.hash.slice(0, 16)} already on the slave`);
      return { dir, probe };
    }
    // Into a directory of this deploy's own, renamed into place when complete: another deploy of the
    // same bundle may be installing from `dir` right now.
    const incoming = `${probe.facts.home}/${incomingBundleDir(bundle.hash, crypto.randomBytes(6).toString('hex'))}`;
    this.progress(slave.name, 'upload', `uploading bundle ${bundle.hash.slice(0, 16)} to ${dir}`);
    const mk = await shell.exec(`mkdir -p ${q(incoming)} && chmod 700 "$HOME/.d8-agent"`, { timeoutMs: 30000 });
    if (mk.code !== 0) {
      log.record({ command: `mkdir -p ${incoming}`, success: false, stdout: mk.stdout, stderr: mk.stderr, exit_code: mk.code });
      throw new RemoteCommandError(`${slave.name}: cannot create ${incoming}: ${mk.stderr.trim()}`, mk.code);
    }
    const started = Date.now();
    await shell.upload(bundle.files.map((f) => ({ local: path.join(bundle.dir, f), remote: `${incoming}/${f}` })));
    const place = placeBundleCommand(incoming, dir, bundle.hash);
    const placed = await shell.exec(place, { timeoutMs: 30000 });
    log.record({ command: `upload bundle to ${incoming}, then ${place}`, success: placed.code === 0, stdout: `${bundle.files.join(' ')} in ${Date.now() - started} ms`, stderr: placed.stderr, exit_code: placed.code });
    if (placed.code !== 0) throw new RemoteCommandError(`${slave.name}: cannot place the bundle in ${dir}: ${placed.stderr.trim()}`, placed.code);
    return { dir, probe };
  }

  private async deployNow(slave: SlaveConfig, opts: DeployOptions): Promise<DeployResult> {
    const t0 = Date.now();
    const c = this.opts.config;
    let token: string | undefined;
    let tokenError: string | null = null;
    try {
      optionalAgentToken(c);
      // The slave's own token (its first deploy creates it); a fleet token, if any, is only presented to older agents.
      token = slaveTokens(c, this.env).forDeploy(slave.name);
    } catch (err) {
      tokenError = (err as Error).message;
    }
    const redactor = this.redactorFor(token);
    const log = new BuildLog({ name: slave.name, host: slave.host }, 'direct', opts.reason, redactor);
    let shell: SlaveShell | null = null;
    let bundle: BundleInfo | null = null;
    let result: InstallResult | null = null;
    let status: DeployStatus = 'failed';
    let strategy: Strategy | null = null;
    let attempts: InstallAttempt[] = [];
    let commit: string | null = null;
    let error: string | null = null;
    let errorKind: DeployErrorKind | null = null;
    let tlsFingerprint: string | null | undefined;
    try {
      if (tokenError) throw new DeployConfigError(tokenError);
      bundle = opts.bundle ?? await this.bundle();
      const b = bundle;
      this.progress(slave.name, 'bundle', `bundle ${b.hash.slice(0, 16)} (commit ${b.versionInfo.commit.slice(0, 7)}${b.versionInfo.dirty ? ', dirty tree' : ''})`);

      if (!opts.force && !b.versionInfo.dirty) {
        const pin = this.opts.pins ? this.opts.pins(slave.name) : this.reportedPins.get(slave.name) ?? null;
        const probe = await probeHealth(slave.agentHost, slave.agentPort, 2000, pin);
        log.record({
          command: `GET ${agentBaseUrl(slave, pin ? 'https' : 'http')}/api/health (already up to date?)`,
          success: probe.ok, stdout: probe.ok ? JSON.stringify(probe.health) : '', stderr: probe.ok ? '' : probe.error, exit_code: null,
        });
        if (probe.ok && probe.health.commit === b.versionInfo.commit && !probe.health.dirty) {
          status = 'up_to_date';
          strategy = probe.health.install_strategy;
          commit = probe.health.commit;
          this.progress(slave.name, 'done', `already runs ${commit.slice(0, 7)} (${strategy ?? 'unknown strategy'}): nothing to do (use force to redeploy)`);
          return this.finish(slave, log, { status, strategy, attempts, commit, error, errorKind, bundle: b, t0 });
        }
      }

      this.progress(slave.name, 'connect', slave.local ? 'running on this machine (host: local)' : `connecting to ${slave.user}@${slave.host}:${slave.sshPort}`);
      const connectStarted = new Date().toISOString();
      try {
        shell = await this.open(slave, log);
        log.record({ command: slave.local ? 'local shell' : `ssh ${slave.user}@${slave.host} -p ${slave.sshPort}`, success: true, stdout: '', stderr: '', exit_code: 0, timestamp: connectStarted });
      } catch (err) {
        log.record({ command: `ssh ${slave.user}@${slave.host} -p ${slave.sshPort}`, success: false, stdout: '', stderr: (err as Error).message, exit_code: null, timestamp: connectStarted });
        throw err;
      }
      const { dir, probe: host } = await this.stage(slave, shell, b, log);
      await baseImageStep({
        slave, config: c, shell, verdict: host.verdict, env: this.env,
        record: (st) => log.record({ command: st.command, success: st.code === 0, stdout: st.stdout, stderr: st.stderr, exit_code: st.code }),
        progress: (m) => this.progress(slave.name, 'image', m),
      });
      // Without the runtime, install.sh still runs: docker may win, and venv/native fail with their own reason.
      let runtimeError: string | null = null;
      const nodePath = await provideRuntime({
        slave, config: c, shell, home: host.facts.home, verdict: host.verdict, cache: this.runtimes, log,
        progress: (m) => this.progress(slave.name, 'runtime', m),
      }).catch((err: Error) => {
        runtimeError = `the Node.js runtime could not be provided: ${err.message}`;
        log.record({ command: 'runtime', success: false, stdout: '', stderr: runtimeError, exit_code: null });
        this.progress(slave.name, 'runtime', runtimeError);
        return undefined;
      });

      const installMs = this.opts.installTimeoutMs ?? 20 * 60 * 1000;
      // The host ends the installer at the same limit (its whole process group), so one that timed
      // out does not keep running there, holding the host's installer lock.
      const cmd = withTimeout(installCommand({
        bundleDir: dir,
        strategies: slave.strategies,
        attempts: c.installAttempts,
        delaySeconds: c.installDelaySeconds,
        agentPort: slave.agentPort,
        baseImage: c.baseImage,
        healthTimeoutSeconds: this.opts.healthTimeoutSeconds,
        nodePath,
      }), Math.max(1, Math.ceil(installMs / 1000)));
      this.progress(slave.name, 'install', `install.sh --strategies ${slave.strategies.join(',')} (${c.installAttempts} attempt(s) each)`);
      const installStarted = new Date().toISOString();
      const run = await shell.exec(cmd, {
        stdin: `${token}\n`,
        timeoutMs: installMs,
        onStderrLine: (line) => {
          const m = /^\[d8-install\] (.*)$/.exec(line);
          if (m) this.progress(slave.name, 'install', redactor.text(m[1]));
        },
      });
      log.record({ command: cmd, success: run.code === 0, stdout: run.stdout, stderr: run.stderr, exit_code: run.code, timestamp: installStarted });
      try {
        result = parseInstallOutput(run.stdout);
      } catch (err) {
        if (!(err instanceof InstallOutputError)) throw err;
        const tail = run.stderr.trim().split('\n').slice(-3).join(' | ');
        throw new RemoteCommandError(`${slave.name}: install.sh exited ${run.code} without its JSON result (${err.message})${tail ? `: ${tail}` : ''}`, run.code);
      }
      attempts = result.attempts;
      strategy = result.strategy;
      if (result.ok) {
        tlsFingerprint = result.tls_fingerprint ?? null;
        this.reportedPins.set(slave.name, tlsFingerprint);
      }
      if (!result.ok) {
        const last = result.attempts[result.attempts.length - 1];
        const lastLine = last?.stderr_tail.trim().split('\n').pop() ?? '';
        throw new RemoteCommandError(`${slave.name}: every strategy failed (${slave.strategies.join(', ')}; ${result.attempts.length} attempts)` +
          (last ? `; last: ${last.strategy} attempt ${last.attempt} exited ${last.exit_code}${lastLine ? `: ${lastLine}` : ''}` : '') +
          (runtimeError ? `; ${runtimeError}` : ''), run.code);
      }

      const url = agentBaseUrl(slave, tlsFingerprint ? 'https' : 'http');
      this.progress(slave.name, 'verify', `checking ${url}/api/health from the master${tlsFingerprint ? ` (certificate pinned: sha256 ${tlsFingerprint})` : ''}`);
      const client = new AgentClient({ attempts: 1, attemptTimeoutMs: 3000, deadlineMs: 3000 });
      const probe = await waitForHealth(client, { ...slave, tlsFingerprint }, (h) => h.commit === b.versionInfo.commit, this.opts.verifyTimeoutMs ?? 15000)
        .finally(() => client.close());
      log.record({
        command: `GET ${url}/api/health`,
        success: probe.ok && probe.health.commit === b.versionInfo.commit,
        stdout: probe.ok ? JSON.stringify(probe.health) : '', stderr: probe.ok ? '' : probe.error, exit_code: null,
      });
      if (!probe.ok) {
        throw new RemoteCommandError(`${slave.name}: install.sh reports the agent up (${strategy}), but the master cannot reach http://${slave.agentHost}:${slave.agentPort}: ` +
          `${probe.error} (firewall? set agentHost if the agent is reached under another address)`, null);
      }
      commit = probe.health.commit;
      if (commit !== b.versionInfo.commit) {
        throw new RemoteCommandError(`${slave.name}: http://${slave.agentHost}:${slave.agentPort} reports commit ${commit.slice(0, 7)}, not ${b.versionInfo.commit.slice(0, 7)}: ` +
          'another agent answers on that address (agentHost/agentPort point elsewhere?)', null);
      }
      status = 'deployed';
      slaveTokens(c, this.env).markInstalled(slave.name, token!);
      this.progress(slave.name, 'done', `agent up with ${strategy} (commit ${commit.slice(0, 7)}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      error = redactor.text((err as Error).message ?? String(err));
      errorKind = deployErrorKind(err);
      this.progress(slave.name, 'done', `failed: ${error}`);
    } finally {
      if (shell) await shell.close().catch(() => undefined);
    }
    return { ...this.finish(slave, log, { status, strategy, attempts, commit, error, errorKind, bundle, t0 }), tlsFingerprint };
  }

  private finish(slave: SlaveConfig, log: BuildLog, o: {
    status: DeployStatus; strategy: Strategy | null; attempts: InstallAttempt[];
    commit: string | null; error: string | null; errorKind: DeployErrorKind | null; bundle: BundleInfo | null; t0: number;
  }): DeployResult {
    let buildLogPath: string | null = null;
    try {
      buildLogPath = log.write(log.document({
        status: o.status === 'deployed' ? 'success' : o.status, strategy: o.strategy, error: o.error, commit: o.commit, bundleHash: o.bundle?.hash ?? null, attempts: o.attempts,
      }), this.env);
    } catch (err) {
      this.opts.logger?.error({ slave: slave.name, err: (err as Error).message }, 'cannot write the build log');
    }
    return {
      slave: slave.name,
      engine: 'direct',
      status: o.status,
      ok: o.status !== 'failed',
      strategy: o.strategy,
      attempts: o.attempts,
      commit: o.commit,
      buildLogPath,
      error: o.error,
      errorKind: o.status === 'failed' ? (o.errorKind ?? 'engine') : null,
      durationMs: Date.now() - o.t0,
    };
  }

  private async uninstallNow(slave: SlaveConfig): Promise<UninstallResult> {
    const redactor = this.redactorFor(this.opts.config.agentToken);
    const log = new BuildLog({ name: slave.name, host: slave.host }, 'direct', 'uninstall', redactor);
    let shell: SlaveShell | null = null;
    try {
      const bundle = await this.bundle();
      shell = await this.open(slave);
      const { dir } = await this.stage(slave, shell, bundle, log).catch((err: unknown) => {
        if (err instanceof HostUnsupportedError) return { dir: null };
        throw err;
      });
      if (!dir) return { slave: slave.name, ok: true, output: 'nothing to uninstall: no strategy can run on this host', error: null };
      const r = await shell.exec(uninstallCommand(dir, slave.agentPort), { timeoutMs: 120000 });
      const output = redactor.text(r.stderr + r.stdout);
      return { slave: slave.name, ok: r.code === 0, output, error: r.code === 0 ? null : `uninstall.sh exited ${r.code}` };
    } catch (err) {
      return { slave: slave.name, ok: false, output: '', error: redactor.text((err as Error).message) };
    } finally {
      if (shell) await shell.close().catch(() => undefined);
    }
  }
}
