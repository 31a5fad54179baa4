/**
 * A throwaway copy of the D8 Fleet Pulumi project for the engine tier: Pulumi.yaml, package.json and
 * infra/index.js from this checkout, dist/ and node_modules/ linked (so it runs the program built
 * from this tree), in a small git repository of its own with two commits (`old` -> `head`), so the
 * master daemon started on it classifies an agent reporting `old` as `behind`.
 */
import { execFileSync, spawn } from 'child_process';
import fs from 'fs';
import path from 'path';
import YAML from 'yaml';
import { buildBundle, type BundleInfo } from '../../../agent/bundle/build';
import { repoRoot } from '../../../core/paths';
import { captureVersionInfo } from '../../../core/version-info';
import { uninstallAsUser } from '../../../scripts/test-hosts/hosts';
import type { TierCheck } from '../../support/tier';
import { systemTier } from '../../system/support/hosts';
import { pulumiEngineTier } from './toolchain';

/** The engine tier against the SSH test hosts needs the system tier's hosts too (sshd users, docker, the base image). */
export const engineHostsTier: TierCheck = {
  tier: 'engine',
  missing: () => pulumiEngineTier.missing() ?? systemTier.missing(),
  enable: `${pulumiEngineTier.enable}; ${systemTier.enable}`,
};

const GIT_ENV = { GIT_AUTHOR_NAME: 'd8 engine tier', GIT_AUTHOR_EMAIL: 'engine@d8.test', GIT_COMMITTER_NAME: 'd8 engine tier', GIT_COMMITTER_EMAIL: 'engine@d8.test' };

export function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, ...GIT_ENV } }).trim();
}

export interface FleetProject {
  dir: string;
  /** An ancestor of `head`. */
  old: string;
  /** The project's HEAD: the master's own commit. */
  head: string;
}

/**
 * `agentSources`: the repository also holds core/ and agent/ (node_modules linked), so a master on it
 * builds the agent bundle from its own checkout, and a commit can change what the agent does.
 */
export function createFleetProject(dir: string, opts: { agentSources?: boolean } = {}): FleetProject {
  const repo = repoRoot();
  if (!fs.existsSync(path.join(repo, 'dist', 'infra', 'program.js')) || !fs.existsSync(path.join(repo, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: build first (npx tsc -p tsconfig.json)');
  }
  fs.mkdirSync(path.join(dir, 'infra'), { recursive: true });
  for (const f of ['Pulumi.yaml', 'package.json', path.join('infra', 'index.js')]) fs.copyFileSync(path.join(repo, f), path.join(dir, f));
  fs.symlinkSync(path.join(repo, 'dist'), path.join(dir, 'dist'));
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
  // The stack file gets an encryption salt from pulumi and version_info.json is written by the master:
  // neither may make the tree "dirty" or be part of a commit.
  fs.writeFileSync(path.join(dir, '.gitignore'), 'node_modules\ndist\nversion_info.json\nPulumi.*.yaml\nbuild/\n');
  if (opts.agentSources) for (const d of ['core', 'agent']) fs.cpSync(path.join(repo, d), path.join(dir, d), { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'old release');
  const old = git(dir, 'rev-parse', 'HEAD');
  fs.writeFileSync(path.join(dir, 'CHANGES'), 'a newer release\n');
  git(dir, 'add', 'CHANGES');
  git(dir, 'commit', '-q', '-m', 'new release');
  return { dir, old, head: git(dir, 'rev-parse', 'HEAD') };
}

/** Two releases of the agent: the project's old commit and its HEAD (what a master on it runs). */
export async function releaseBundles(project: FleetProject, outRoot: string): Promise<{ old: BundleInfo; head: BundleInfo }> {
  const base = captureVersionInfo(project.dir);
  return {
    old: await buildBundle({ outRoot, versionInfo: { ...base, commit: project.old, dirty: false } }),
    head: await buildBundle({ outRoot, versionInfo: { ...base, commit: project.head, dirty: false } }),
  };
}

/** The environment of a pulumi run: the toolchain's, then the backend's, without unset keys. */
export function engineEnv(...parts: NodeJS.ProcessEnv[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Object.assign({}, ...parts) as NodeJS.ProcessEnv)) if (v !== undefined) env[k] = v;
  return env;
}

export function writeStackFile(dir: string, stack: string, config: Record<string, unknown>): void {
  const prefixed = Object.fromEntries(Object.entries(config).map(([k, v]) => [`d8:${k}`, v]));
  fs.writeFileSync(path.join(dir, `Pulumi.${stack}.yaml`), YAML.stringify({ config: prefixed }));
}

/** Root-side, for cleanup: uninstall.sh --port as the test user (never --all: other tests share the users). */
export function uninstallPort(user: string, port: number): void {
  uninstallAsUser(repoRoot(), user, port);
}

/**
 * Makes the bundles already on a host look untouched for 11 minutes: install.sh prunes only those
 * older than 10 (a younger one may belong to a deploy still waiting for the host's installer lock).
 */
export function ageHostBundles(home: string, minutes = 11): void {
  const dir = path.join(home, '.d8-agent', 'bundles');
  const when = new Date(Date.now() - minutes * 60_000);
  for (const e of fs.readdirSync(dir)) fs.utimesSync(path.join(dir, e), when, when);
}

/** Polls `probe` until it returns something other than null. */
export async function waitFor<T>(what: string, probe: () => Promise<T | null> | T | null, timeoutMs: number, intervalMs = 500): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface CliRun { code: number | null; stdout: string; stderr: string }

/** Runs this checkout's `d8` (bin/d8.js, i.e. dist/) with `args` and collects its output. */
export function runD8(args: string[], o: { cwd: string; env: NodeJS.ProcessEnv }): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot(), 'bin', 'd8.js'), ...args], { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
