/** What every fleet command needs: the repo, the stack's config, the store, a logger. */
import path from 'path';
import { createLogger, type Logger } from '../core/logger';
import { repoRoot } from '../core/paths';
import { fleetRedactor } from '../core/fleet-secrets';
import { loadFleetConfig, type FleetConfig } from '../core/stack-config';
import { openStore, type Store } from '../master/store';
import type { ControlKind, ControlResult } from '../master/store/commands';
import { FleetControl } from '../master/control';
import { chooseEngine, createDeployer, type EngineChoice } from '../master/deploy/select';
import { DeployCoordinator, describeHolder } from '../master/deploy/coordinator';
import { MasterVersion } from '../master/master-version';
import { Supervisor } from '../master/daemon/supervisor';
import { tuningFromEnv } from '../master/daemon/tuning';

export interface FleetOptions {
  stack?: string;
  repo?: string;
}

export interface FleetContext {
  repoDir: string;
  config: FleetConfig;
  store: Store;
  logger: Logger;
  close(): void;
}

export const DEFAULT_STACK = 'dev';

export function openFleet(opts: FleetOptions, loggerName = 'd8'): FleetContext {
  const repoDir = opts.repo ? path.resolve(opts.repo) : repoRoot();
  // A deploy without a key fails (or becomes a human request) where it happens; checking, status and
  // requests work without one.
  const config = loadFleetConfig(repoDir, opts.stack ?? DEFAULT_STACK, process.env, { requireSshKey: false });
  // One redactor that also learns slave tokens rotated while this process runs (d8 master does).
  const redactor = fleetRedactor(config);
  const logger = createLogger({ name: loggerName, redactor });
  const store = openStore(undefined, redactor, logger);
  return { repoDir, config, store, logger, close: () => store.close() };
}

/**
 * Runs a CLI command against the fleet: opens it (a config problem exits 2), runs `fn`, always
 * closes the store; a failure prints its message and exits with `exitCodeFor(err)` (default 1).
 */
export async function withFleet(
  opts: FleetOptions,
  fn: (ctx: FleetContext) => unknown,
  exitCodeFor: (err: unknown) => number = () => 1,
): Promise<void> {
  let ctx: FleetContext;
  try {
    ctx = openFleet(opts);
  } catch (err) {
    return fail(err, 2);
  }
  try {
    await fn(ctx);
  } catch (err) {
    fail(err, exitCodeFor(err));
  } finally {
    ctx.close();
  }
}

/**
 * Runs a CLI command on the store alone (no stack config needed): an unreadable store exits 2; a
 * failure prints its message and exits with `exitCodeFor(err)` (default 1); the store is always closed.
 */
export function withStore(fn: (store: Store) => void, exitCodeFor: (err: unknown) => number = () => 1): void {
  let store: Store;
  try {
    store = openStore();
  } catch (err) {
    return fail(err, 2);
  }
  try {
    fn(store);
  } catch (err) {
    fail(err, exitCodeFor(err));
  } finally {
    store.close();
  }
}

/** FleetControl for a CLI process: actions go to the running daemon, or run here when there is none. */
export function cliControl(ctx: FleetContext, engine: EngineChoice = 'auto'): FleetControl {
  const runLocally = async (kind: ControlKind, slave: string): Promise<ControlResult> => {
    const chosen = chooseEngine(engine);
    ctx.logger.info({ engine: chosen.engine, why: chosen.why }, `no master daemon runs for stack ${ctx.config.stack}: acting from this process with the ${chosen.engine} engine`);
    const deployer = await createDeployer(chosen.engine, { config: ctx.config, repoDir: ctx.repoDir, logger: ctx.logger, pins: ctx.store.pins.lookup(ctx.config.stack) }, process.env.D8_DEPLOYER_MODULE);
    const version = new MasterVersion(ctx.repoDir, ctx.logger);
    const deploys = new DeployCoordinator(ctx.config.stack, deployer, ctx.store.deploys, ctx.logger, {
      locks: ctx.store.deployLocks, holder: `d8 ${kind}`,
      onWait: (s, h) => process.stderr.write(`${s}: waiting for the deploy by ${describeHolder(h)} to finish…\n`),
    });
    const sup = new Supervisor({ config: ctx.config, store: ctx.store, version, deploys, logger: ctx.logger, tuning: tuningFromEnv(), repoDir: ctx.repoDir });
    try {
      return kind === 'retry' ? await sup.retry(slave) : await sup.forceUpdate(slave);
    } finally {
      sup.close();
    }
  };
  return new FleetControl({ config: ctx.config, store: ctx.store, repoDir: ctx.repoDir, runLocally });
}

/** Prints an error the user can act on and sets a failing exit code. */
export function fail(err: unknown, code = 1): void {
  process.stderr.write(`d8: ${(err as Error).message ?? String(err)}\n`);
  process.exitCode = code;
}
