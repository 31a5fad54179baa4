/**
 * The real-engine tier needs the Pulumi CLI, the Node.js language host and the command provider,
 * built from Go modules by scripts/pulumi-toolchain.sh into a cache outside the clone. This module
 * asks that script (the single source of truth) whether the toolchain is complete and how to use it.
 */
import { spawnSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { z } from 'zod';
import { repoRoot } from '../../../core/paths';
import type { TierCheck } from '../../support/tier';

const SCRIPT = path.join(repoRoot(), 'scripts', 'pulumi-toolchain.sh');

const ToolchainEnvSchema = z.object({
  version: z.string().min(1),
  commandVersion: z.string().min(1),
  binDir: z.string().min(1),
  env: z.record(z.string()),
});

export interface PulumiToolchain {
  /** @pulumi/pulumi version pinned in package-lock.json (what `pulumi version` prints, minus the v). */
  version: string;
  /** @pulumi/command version pinned in package-lock.json. */
  commandVersion: string;
  /** Directory holding `pulumi`, `pulumi-language-nodejs`, ... */
  binDir: string;
  /** Absolute path of the `pulumi` binary. */
  pulumiBin: string;
  /** Environment for spawning `pulumi` or the Automation API: PATH with binDir first, PULUMI_HOME, ... */
  env: NodeJS.ProcessEnv;
}

function runScript(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return { status: null, stdout: '', stderr: r.error.message };
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** How to use the toolchain; throws when the script cannot describe it (e.g. no package-lock.json). */
export function pulumiToolchain(base: NodeJS.ProcessEnv = process.env): PulumiToolchain {
  const r = runScript(['env', '--json']);
  if (r.status !== 0) {
    throw new Error(`scripts/pulumi-toolchain.sh env --json failed (exit ${r.status}): ${r.stderr.trim()}`);
  }
  const parsed = ToolchainEnvSchema.parse(JSON.parse(r.stdout));
  return {
    version: parsed.version,
    commandVersion: parsed.commandVersion,
    binDir: parsed.binDir,
    pulumiBin: path.join(parsed.binDir, 'pulumi'),
    env: {
      ...base,
      ...parsed.env,
      PATH: [parsed.binDir, base.PATH ?? ''].filter((p) => p !== '').join(path.delimiter),
    },
  };
}

/**
 * A throwaway local file backend with a passphrase secrets provider: no Pulumi Cloud, no login.
 * Returns the env to merge and the backend directory (remove it in afterAll).
 */
export function localBackendEnv(prefix = 'd8-engine-backend-'): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    dir,
    env: {
      PULUMI_BACKEND_URL: `file://${dir}`,
      PULUMI_CONFIG_PASSPHRASE: 'd8-engine-test-passphrase',
    },
  };
}

/**
 * Which command provider the toolchain holds, for test names: the real one or the D8 stand-in
 * (tests/engine/support/command-provider), so a run always says which it meant.
 */
export function commandProviderLabel(): string {
  const r = runScript(['versions']);
  const line = `${r.stdout}\n${r.stderr}`.split('\n').find((l) => l.trim().startsWith('pulumi-resource-command'));
  if (!line) return 'command provider: unknown';
  return /STAND-IN/.test(line) ? 'command provider: D8 STAND-IN' : `command provider: real ${line.trim().split(/\s+/)[1] ?? ''}`.trim();
}

/** Tier check: "pulumi CLI + language host + command provider built". */
export const pulumiEngineTier: TierCheck = {
  tier: 'engine',
  missing: () => {
    if (!fs.existsSync(SCRIPT)) return `${SCRIPT} is missing`;
    const r = runScript(['check']);
    if (r.status === 0) return null;
    const why = [r.stdout, r.stderr]
      .join('\n')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    return `pulumi CLI + language host + command provider not built (${why.join('; ') || `exit ${r.status}`})`;
  },
  enable: 'scripts/pulumi-toolchain.sh build',
};
