/**
 * version_info.json: the identity of a build. The master captures it from git at start; every agent
 * bundle embeds the one it was built from and reports it on /api/health and /api/version.
 */
import fs from 'fs';
import path from 'path';
import { execFileSync } from 'child_process';
import { z } from 'zod';

export const VERSION_FILE_NAME = 'version_info.json';

export const VersionInfoSchema = z.object({
  branch: z.string().min(1),
  commit: z.string().regex(/^[0-9a-f]{40}$/, 'must be a full 40-hex git commit'),
  version: z.string().min(1),
  deployed_at: z.string().datetime({ offset: true }),
  dirty: z.boolean(),
});
export type VersionInfo = z.infer<typeof VersionInfoSchema>;

export class VersionFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VersionFileError';
  }
}

export class NotAGitCheckoutError extends Error {
  constructor(dir: string, detail: string) {
    super(`${dir} is not inside a git checkout with at least one commit (${detail}); ` +
      'run inside a clone of the repository, or pass --keep-existing to keep the current version_info.json');
    this.name = 'NotAGitCheckoutError';
  }
}

/**
 * A release's identity without the build time: what goes into an image whose bytes must depend on the
 * release only (swarm mode). An agent started from such a file reports its own start as `deployed_at`.
 */
export function releaseOnlyVersionInfo(info: VersionInfo): Omit<VersionInfo, 'deployed_at'> {
  return { branch: info.branch, commit: info.commit, version: info.version, dirty: info.dirty };
}

export interface ReadVersionOptions {
  /** `deployed_at` for a release-only file (releaseOnlyVersionInfo); without it such a file is refused. */
  missingDeployedAt?: () => string;
}

export function readVersionInfo(file: string, opts: ReadVersionOptions = {}): VersionInfo {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new VersionFileError(`cannot read version file ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new VersionFileError(`version file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (opts.missingDeployedAt && json && typeof json === 'object' && !('deployed_at' in json)) {
    json = { ...json, deployed_at: opts.missingDeployedAt() };
  }
  const parsed = VersionInfoSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new VersionFileError(`version file ${file}: ${issue.path.join('.') || '(root)'} ${issue.message}`);
  }
  return parsed.data;
}

function git(dir: string, args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** The HEAD commit of the checkout at `dir`, or throws NotAGitCheckoutError. */
export function gitHead(dir: string): string {
  try {
    return git(dir, ['rev-parse', 'HEAD']);
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? (err as Error).message).trim().split('\n')[0];
    throw new NotAGitCheckoutError(dir, stderr);
  }
}

/** Reads branch, commit and dirtiness from git and the version from package.json. */
export function captureVersionInfo(repoDir: string, now: Date = new Date()): VersionInfo {
  const commit = gitHead(repoDir);
  let branch = git(repoDir, ['rev-parse', '--abbrev-ref', 'HEAD']);
  if (branch === 'HEAD') branch = 'detached';
  const dirty = git(repoDir, ['status', '--porcelain', '--untracked-files=no', '--', '.', `:!${VERSION_FILE_NAME}`]) !== '';
  const pkg = JSON.parse(fs.readFileSync(path.join(repoDir, 'package.json'), 'utf8')) as { version?: string };
  return VersionInfoSchema.parse({
    branch,
    commit,
    version: pkg.version ?? '0.0.0',
    deployed_at: now.toISOString(),
    dirty,
  });
}

/** Writes the file atomically (temp file + rename) so a reader never sees half a file. */
export function writeVersionInfo(file: string, info: VersionInfo): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

export interface CaptureOptions {
  repoDir: string;
  output?: string;
  /** Outside a git checkout, keep an existing valid file instead of failing. */
  keepExisting?: boolean;
}

export interface CaptureResult {
  info: VersionInfo;
  file: string;
  kept: boolean;
}

export function captureToFile(opts: CaptureOptions): CaptureResult {
  const file = opts.output ?? path.join(opts.repoDir, VERSION_FILE_NAME);
  try {
    const info = captureVersionInfo(opts.repoDir);
    writeVersionInfo(file, info);
    return { info, file, kept: false };
  } catch (err) {
    if (err instanceof NotAGitCheckoutError && opts.keepExisting && fs.existsSync(file)) {
      return { info: readVersionInfo(file), file, kept: true };
    }
    throw err;
  }
}

export const shortCommit = (commit: string | null | undefined): string => (commit ? commit.slice(0, 7) : '-------');
