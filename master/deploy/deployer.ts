/** The one interface every deployer (direct over SSH, pulumi through the Automation API) implements. */
import type { Logger } from '../../core/logger';
import type { FleetConfig, SlaveConfig } from '../../core/stack-config';
import type { DeployEngine, DeployResult } from '../../core/deploy-result';
import type { BundleInfo } from '../../agent/bundle/build';

export type { DeployEngine, DeployResult, DeployStatus, DeployErrorKind } from '../../core/deploy-result';

export type DeployPhase = 'bundle' | 'check' | 'connect' | 'probe' | 'upload' | 'image' | 'runtime' | 'install' | 'verify' | 'done';

/** One step of a deploy as it happens, whichever deployer runs it. */
export interface DeployProgress {
  slave: string;
  phase: DeployPhase;
  message: string;
}

export interface DeployOptions {
  /** Redeploy even when the slave already runs the bundle's commit. */
  force?: boolean;
  /** Why (shown in logs, the build log and alerts): "dead", "behind", "manual", … */
  reason: string;
  /** Another process deploys this slave: fail at once (kind `locked`) instead of waiting for it. */
  noWait?: boolean;
  /** Install this bundle (a kept release) instead of the one built from the checkout. */
  bundle?: BundleInfo;
}

export interface Deployer {
  readonly engine: DeployEngine;
  deploy(slave: SlaveConfig, opts: DeployOptions): Promise<DeployResult>;
  /** The bundle a deploy without `opts.bundle` installs; deployers that can install a given bundle have it. */
  bundle?(): Promise<BundleInfo>;
  /**
   * The certificate fingerprints the engine's own record holds for agents it installed (the pulumi
   * stack's `installs` output): how a master whose store never saw those installs (a plain
   * `pulumi up`) learns to speak HTTPS to them, for the slaves named. Slaves with no recorded
   * fingerprint are left out.
   */
  recordedPins?(slaves: readonly string[]): Promise<Record<string, string>>;
}

/** What every deployer factory gets (select.ts, and a --deployer-module's createDeployer). */
export interface DeployerContext {
  config: FleetConfig;
  repoDir: string;
  logger: Logger;
  /** A deploy's steps as they happen (probe verdict, base image, install progress), for `d8 up`. */
  onProgress?: (p: DeployProgress) => void;
  /** The recorded certificate pins (store.pins.lookup(stack)): checks before a deploy speak HTTPS to pinned agents. */
  pins?: (slave: string) => string | null;
}
