/**
 * SlaveHost: one slave of the fleet. Three children, named by infra/urns.ts so the master can target
 * them: `<slave>-state` (created once; its delete is the full clean), `<slave>-bundle` puts the agent
 * bundle on the host, `<slave>-install` runs install.sh (and `uninstall.sh --stop-only` on delete,
 * which a replace runs too) exactly as agent/install/command.ts builds the command lines.
 */
import fs from 'fs';
import path from 'path';
import * as pulumi from '@pulumi/pulumi';
import * as command from '@pulumi/command';
import { installCommand, remoteBundleDir, uninstallCommand } from '../agent/install/command';
import { parseInstallOutput, InstallOutputError, type InstallResult } from '../core/install-result';
import type { Strategy } from '../core/protocol';
import type { SlaveConfig } from '../core/stack-config';
import type { BundleRef } from './bundle-ref';
import { stageRemoteCopy } from './bundle-stage';
import { localCopyCommand, localRemoveCommand, purgeCommand, STATE_CREATE_COMMAND, uninstallOnDelete, withTimeout } from './shell';
import { SLAVE_HOST_TYPE, slaveResourceNames } from './urns';
import { ensureRuntimeCommand, incomingTarballOnHost, runtimeNodeOnHost, type RuntimeRef } from '../core/runtime-unpack';

/** How long uninstall.sh may take (stop the service, remove the container or venv). */
export const UNINSTALL_TIMEOUT_SECONDS = 300;
/** Extra seconds the engine waits beyond the shell `timeout`, so the shell limit always fires first. */
const ENGINE_GRACE_SECONDS = 120;

export interface SlaveHostArgs {
  slave: SlaveConfig;
  bundle: BundleRef;
  /** The agent token; reaches the installer only through stdin. */
  token: pulumi.Output<string>;
  /** Remote slaves: the SSH connection (undefined for `host: local`). */
  connection?: command.types.input.remote.ConnectionArgs;
  installAttempts: number;
  installDelaySeconds: number;
  installTimeoutSeconds: number;
  baseImage?: string;
  /** A remote slave without node (`arch` in its config): this runtime tarball travels with the bundle. */
  runtime?: RuntimeRef & { file: string };
}

/** Parses install.sh's stdout into its JSON result; a garbled result is a warning, not a crash. */
export function installResult(slave: string, stdout: string, resource?: pulumi.Resource): InstallResult | null {
  try {
    return parseInstallOutput(stdout);
  } catch (err) {
    if (!(err instanceof InstallOutputError)) throw err;
    void pulumi.log.warn(`${slave}: cannot read the winning strategy: ${err.message}`, resource);
    return null;
  }
}

/** The winning strategy from install.sh's stdout (null when none won or the result is garbled). */
export function winningStrategy(slave: string, stdout: string, resource?: pulumi.Resource): Strategy | null {
  return installResult(slave, stdout, resource)?.strategy ?? null;
}

/** Where the master reaches a slave's agent (IPv6 literals bracketed). */
export function agentEndpoint(slave: Pick<SlaveConfig, 'agentHost' | 'agentPort'>, scheme: 'http' | 'https' = 'http'): string {
  const host = slave.agentHost.includes(':') ? `[${slave.agentHost}]` : slave.agentHost;
  return `${scheme}://${host}:${slave.agentPort}`;
}

export class SlaveHost extends pulumi.ComponentResource {
  readonly state: command.remote.Command | command.local.Command;
  readonly bundle: command.remote.CopyToRemote | command.local.Command;
  readonly install: command.remote.Command | command.local.Command;
  /** `http://<agentHost>:<agentPort>`, where the master reaches the agent. */
  readonly endpoint: pulumi.Output<string>;
  /** The strategy that won (docker, venv or native), from install.sh's JSON result. */
  readonly strategy: pulumi.Output<Strategy | null>;
  /** install.sh's JSON result (strategy and every attempt), null when it printed none. */
  readonly installResult: pulumi.Output<InstallResult | null>;
  /** `host: local`: local commands on the master, no SSH. */
  readonly local: boolean;
  /**
   * The host key the connection requires (null: any, or local). A component output, so the master
   * sees which key the resources' state holds: after `d8 trust` it updates them in place instead of
   * replacing them (a replace deletes with the state's old connection, which the new key refuses).
   */
  readonly hostKey: pulumi.Output<string | null>;

  constructor(name: string, args: SlaveHostArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super(SLAVE_HOST_TYPE, name, {}, opts);
    const { slave, bundle } = args;
    this.local = slave.local;
    const names = slaveResourceNames(name);
    const bundleDir = remoteBundleDir(bundle.hash);
    // Only these two change with a release; every other input is stable, so a new commit means
    // "replace the install" and nothing else.
    const triggers = [bundle.versionInfo.commit, bundle.hash];

    const install = installCommand({
      bundleDir,
      strategies: slave.strategies,
      attempts: args.installAttempts,
      delaySeconds: args.installDelaySeconds,
      agentPort: slave.agentPort,
      baseImage: args.baseImage,
      nodePath: args.runtime ? runtimeNodeOnHost(args.runtime) : undefined,
    });
    // The bundle is (re)placed before the install, and the install's delete must stop the old agent
    // before the new copy lands: so whenever the bundle is replaced, the install must be
    // deleted FIRST and created again after the new copy. The bundle's URN in the install's triggers
    // makes that a property dependency, which is what the engine follows to delete dependents of a
    // delete-before-replace resource before it (a plain dependsOn is not).
    // Whatever replaces the install (a new port, other strategies: its command lines) replaces the
    // bundle too, so the two always belong to one release.
    // A replace runs the delete command as much as a real delete does: the install's delete only
    // stops the agent (keeping the venv, bundles and images), the state's delete cleans everything,
    // and the state is replaced by nothing but a real delete.
    const createCmd = args.runtime
      ? `${ensureRuntimeCommand(args.runtime)} && ${withTimeout(install, args.installTimeoutSeconds)}`
      : withTimeout(install, args.installTimeoutSeconds);
    const deleteCmd = uninstallOnDelete(bundleDir, slave.agentPort, uninstallCommand(bundleDir, slave.agentPort, { stopOnly: true }), UNINSTALL_TIMEOUT_SECONDS);
    const stateArgs = {
      create: STATE_CREATE_COMMAND,
      delete: purgeCommand(fs.readFileSync(path.join(bundle.dir, 'uninstall.sh'), 'utf8'), slave.agentPort, UNINSTALL_TIMEOUT_SECONDS),
      logging: 'stdoutAndStderr' as const,
    };
    const stateOpts: pulumi.CustomResourceOptions = {
      parent: this,
      customTimeouts: { delete: `${UNINSTALL_TIMEOUT_SECONDS + ENGINE_GRACE_SECONDS}s` },
    };
    const bundleTriggers = [...triggers, createCmd, deleteCmd];
    const installArgs = (bundleRes: pulumi.Resource) => ({
      create: createCmd,
      delete: deleteCmd,
      // install.sh reads the token from its first stdin line: never argv, env or a log.
      stdin: pulumi.secret(pulumi.interpolate`${args.token}\n`),
      // The command provider never logs stdin; stdout/stderr carry install.sh's progress and result.
      logging: 'stdoutAndStderr' as const,
      triggers: [...triggers, bundleRes.urn],
    });
    const installOpts: pulumi.CustomResourceOptions = {
      parent: this,
      deleteBeforeReplace: true,
      additionalSecretOutputs: ['stdin'],
      // A change of port or strategies must uninstall the old agent, not install a second one.
      replaceOnChanges: ['create', 'delete'],
      customTimeouts: {
        create: `${args.installTimeoutSeconds + ENGINE_GRACE_SECONDS}s`,
        update: `${args.installTimeoutSeconds + ENGINE_GRACE_SECONDS}s`,
        delete: `${UNINSTALL_TIMEOUT_SECONDS + ENGINE_GRACE_SECONDS}s`,
      },
    };

    if (slave.local) {
      this.state = new command.local.Command(names.state, stateArgs, stateOpts);
      this.bundle = new command.local.Command(names.bundle, {
        create: localCopyCommand(bundle.dir, bundleDir, bundle.hash),
        delete: localRemoveCommand(bundleDir),
        logging: 'stdoutAndStderr',
        triggers: bundleTriggers,
      }, { parent: this, deleteBeforeReplace: true, dependsOn: [this.state] });
      this.install = new command.local.Command(names.install, installArgs(this.bundle), { ...installOpts, dependsOn: [this.bundle, this.state] });
    } else {
      if (!args.connection) throw new TypeError(`SlaveHost ${name}: a remote slave needs an SSH connection`);
      this.state = new command.remote.Command(names.state, { ...stateArgs, connection: args.connection }, stateOpts);
      // Lands in bundleDir; see bundle-stage.ts for why the copy starts one level up.
      const rt = args.runtime;
      const copy = stageRemoteCopy(bundle, bundleDir, undefined,
        rt ? [{ local: rt.file, remote: incomingTarballOnHost(rt) }] : []);
      this.bundle = new command.remote.CopyToRemote(names.bundle, {
        connection: args.connection,
        source: new pulumi.asset.FileArchive(copy.source),
        remotePath: copy.remotePath,
        triggers: bundleTriggers,
      }, { parent: this, deleteBeforeReplace: true, dependsOn: [this.state] });
      this.install = new command.remote.Command(names.install, { ...installArgs(this.bundle), connection: args.connection },
        { ...installOpts, dependsOn: [this.bundle, this.state] });
    }

    this.installResult = this.install.stdout.apply((out) => installResult(name, out ?? '', this));
    // An agent that reported a certificate fingerprint serves HTTPS (pinned by the master).
    this.endpoint = this.installResult.apply((r) => agentEndpoint(slave, r?.tls_fingerprint ? 'https' : 'http'));
    this.strategy = this.installResult.apply((r) => r?.strategy ?? null);
    this.hostKey = pulumi.output(args.connection?.hostKey ?? null);
    this.registerOutputs({ endpoint: this.endpoint, strategy: this.strategy, installResult: this.installResult, hostKey: this.hostKey });
  }
}
