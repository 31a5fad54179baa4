/**
 * A throwaway copy of the D8 Fleet Pulumi project for the engine tier: Pulumi.yaml, package.json and
 * infra/index.js from this checkout, dist/ and node_modules/ linked (so it runs the program built
 * from this tree), in a small git repository of its own with two commits (`old` -> `head`), so the
 * master daemon started on it classifies an agent reporting `old` as `behind`.
 */
import { execFileSync, spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import YAML from 'yaml';
import { repoRoot } from '../../../core/paths';

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

export function createFleetProject(dir: string): FleetProject {
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
  fs.writeFileSync(path.join(dir, '.gitignore'), 'node_modules\ndist\nversion_info.json\nPulumi.*.yaml\n');
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'old release');
  const old = git(dir, 'rev-parse', 'HEAD');
  fs.writeFileSync(path.join(dir, 'CHANGES'), 'a newer release\n');
  git(dir, 'add', 'CHANGES');
  git(dir, 'commit', '-q', '-m', 'new release');
  return { dir, old, head: git(dir, 'rev-parse', 'HEAD') };
}

export function writeStackFile(dir: string, stack: string, config: Record<string, unknown>): void {
  const prefixed = Object.fromEntries(Object.entries(config).map(([k, v]) => [`d8:${k}`, v]));
  fs.writeFileSync(path.join(dir, `Pulumi.${stack}.yaml`), YAML.stringify({ config: prefixed }));
}

/** Root-side, for cleanup: uninstall.sh --port as the test user (never --all: other tests share the users). */
export function uninstallPort(user: string, port: number): void {
  const copy = path.join(fs.mkdtempSync('/tmp/d8-engine-uninstall-'), 'uninstall.sh');
  fs.copyFileSync(path.join(repoRoot(), 'agent', 'install', 'uninstall.sh'), copy);
  fs.chmodSync(path.dirname(copy), 0o755);
  fs.chmodSync(copy, 0o644);
  try {
    spawnSync('runuser', ['-u', user, '--', 'env', `HOME=/home/${user}`, 'PATH=/usr/local/bin:/usr/bin:/bin', 'sh', copy, '--port', String(port)],
      { encoding: 'utf8', timeout: 120_000, cwd: '/' });
  } finally {
    fs.rmSync(path.dirname(copy), { recursive: true, force: true });
  }
}
