/**
 * Which deployer the master uses: `pulumi` when a Pulumi CLI is on PATH, `direct` otherwise
 * (`--engine` overrides). A `--deployer-module` may supply another Deployer implementation (used by
 * tests to stand in for a real install on loopback, and by anyone with an unusual fleet).
 */
import fs from 'fs';
import path from 'path';
import type { Deployer, DeployEngine, DeployerContext } from './deployer';

export type { DeployerContext } from './deployer';

export type EngineChoice = DeployEngine | 'auto';

export class DeployerSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeployerSetupError';
  }
}

/** The pulumi executable on PATH (or ~/.pulumi/bin), or null. */
export function findPulumiCli(env: NodeJS.ProcessEnv = process.env): string | null {
  const dirs = (env.PATH ?? '').split(path.delimiter).filter(Boolean);
  if (env.HOME) dirs.push(path.join(env.HOME, '.pulumi', 'bin'));
  for (const d of dirs) {
    const p = path.join(d, 'pulumi');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return null;
}

export function chooseEngine(choice: EngineChoice, env: NodeJS.ProcessEnv = process.env): { engine: DeployEngine; why: string } {
  if (choice !== 'auto') return { engine: choice, why: `--engine ${choice}` };
  const cli = findPulumiCli(env);
  return cli ? { engine: 'pulumi', why: `a Pulumi CLI was found at ${cli}` } : { engine: 'direct', why: 'no Pulumi CLI on PATH' };
}

/** A module loaded with --deployer-module exports `createDeployer(ctx)`. */
type DeployerModule = { createDeployer?: (ctx: DeployerContext) => Deployer | Promise<Deployer> };

export async function createDeployer(engine: DeployEngine, ctx: DeployerContext, modulePath?: string): Promise<Deployer> {
  if (modulePath) {
    const mod = require(path.resolve(modulePath)) as DeployerModule; // eslint-disable-line @typescript-eslint/no-require-imports
    if (typeof mod.createDeployer !== 'function') throw new DeployerSetupError(`${modulePath} does not export createDeployer(ctx)`);
    return mod.createDeployer(ctx);
  }
  if (engine === 'pulumi') {
    const { PulumiDeployer } = await import('./pulumi/pulumi-deployer');
    return new PulumiDeployer({ stack: ctx.config.stack, repoDir: ctx.repoDir, config: ctx.config, logger: ctx.logger, onProgress: ctx.onProgress, pins: ctx.pins });
  }
  if (ctx.config.swarm) {
    const { SwarmNeedsPulumi } = await import('./swarm/needs-pulumi');
    return new SwarmNeedsPulumi();
  }
  return createDirect(ctx);
}

async function createDirect(ctx: DeployerContext): Promise<Deployer> {
  const { createDirectDeployer } = await import('./direct');
  return createDirectDeployer(ctx);
}
