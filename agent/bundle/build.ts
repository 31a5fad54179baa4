/**
 * The agent bundle: everything a slave needs, in one directory, with no `npm install` on the slave.
 *   agent.js            the agent (agent/main.ts + its imports) bundled by esbuild for node 18
 *   version_info.json   the build identity, captured from git now (core/version-info.ts)
 *   install.sh, uninstall.sh, Dockerfile   from agent/install/
 *   requirements.txt    pip requirements for python tasks (the fleet's `d8:requirements`, empty by default)
 *   BUNDLE_HASH         sha256 over the files above (see bundleHash)
 *
 * Bundles are built into a temporary directory and renamed into `<outRoot>/<hash16>`, so concurrent
 * builds (CLI, daemon, tests) never see half a bundle.
 */
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { captureVersionInfo, readVersionInfo, VERSION_FILE_NAME, VersionInfo, writeVersionInfo } from '../../core/version-info';
import { repoRoot } from '../../core/paths';

export const BUNDLE_HASH_FILE = 'BUNDLE_HASH';
export const AGENT_FILE = 'agent.js';
export const REQUIREMENTS_FILE = 'requirements.txt';
/** Copied verbatim from agent/install/. */
export const INSTALLER_FILES = ['install.sh', 'uninstall.sh', 'Dockerfile'] as const;
/** Every file of a bundle, in the order they are hashed (BUNDLE_HASH itself excluded). */
export const BUNDLE_FILES = [AGENT_FILE, VERSION_FILE_NAME, ...INSTALLER_FILES, REQUIREMENTS_FILE] as const;

export interface BuildBundleOptions {
  /** Repository to build from (default: this checkout). */
  repoDir?: string;
  /** Where bundles go, one directory per hash (default: `<repoDir>/build/bundles`). */
  outRoot?: string;
  /** Exact directory for the bundle instead of `<outRoot>/<hash16>` (replaced if it exists). */
  outDir?: string;
  /** pip requirement lines for requirements.txt (default: none). */
  requirements?: string[];
  /**
   * Use this identity instead of capturing it from git. For tests and benchmarks that need a bundle
   * reporting another commit (a "new release") without touching the repository.
   */
  versionInfo?: VersionInfo;
}

export interface BundleInfo {
  /** Absolute path of the bundle directory. */
  dir: string;
  /** sha256 (hex) of the bundle's content; also in `<dir>/BUNDLE_HASH`. */
  hash: string;
  versionInfo: VersionInfo;
  /** File names inside `dir` (including BUNDLE_HASH). */
  files: string[];
}

export class BundleBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BundleBuildError';
  }
}

/** Validates pip requirement lines: one requirement each, no options that could run arbitrary code. */
export function requirementsText(requirements: readonly string[]): string {
  for (const r of requirements) {
    if (/[\r\n]/.test(r) || r.trim() === '') throw new BundleBuildError(`requirement ${JSON.stringify(r)} must be one non-empty line`);
    if (/^\s*-/.test(r)) throw new BundleBuildError(`requirement ${JSON.stringify(r)}: pip options are not allowed in d8:requirements`);
  }
  return requirements.length ? requirements.map((r) => r.trim()).join('\n') + '\n' : '';
}

/**
 * sha256 over name + content of every bundle file. version_info.json's `deployed_at` (the build
 * time) is left out, so rebuilding the same tree gives the same hash and does not trigger a redeploy.
 */
export function bundleHash(dir: string): string {
  const h = crypto.createHash('sha256');
  for (const name of BUNDLE_FILES) {
    let content = fs.readFileSync(path.join(dir, name));
    if (name === VERSION_FILE_NAME) {
      const info = JSON.parse(content.toString('utf8')) as Record<string, unknown>;
      delete info.deployed_at;
      content = Buffer.from(JSON.stringify(info));
    }
    h.update(`${name}\0${content.length}\0`);
    h.update(content);
  }
  return h.digest('hex');
}

async function bundleAgent(repoDir: string, outfile: string): Promise<void> {
  const entry = path.join(repoDir, 'agent', 'main.ts');
  if (!fs.existsSync(entry)) throw new BundleBuildError(`cannot build the agent bundle: ${entry} does not exist`);
  // Imported lazily: esbuild is a dev dependency and only the machine that builds bundles needs it.
  const esbuild = await import('esbuild');
  try {
    await esbuild.build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node18',
      format: 'cjs',
      minify: false,
      sourcemap: false,
      legalComments: 'none',
      logLevel: 'silent',
      absWorkingDir: repoDir,
    });
  } catch (err) {
    const errors = (err as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors;
    const first = errors?.[0];
    const where = first?.location ? ` (${first.location.file}:${first.location.line})` : '';
    throw new BundleBuildError(`esbuild could not bundle agent/main.ts: ${first ? first.text + where : (err as Error).message}`);
  }
}

export async function buildBundle(opts: BuildBundleOptions = {}): Promise<BundleInfo> {
  const repoDir = path.resolve(opts.repoDir ?? repoRoot());
  const outRoot = opts.outDir ? path.dirname(path.resolve(opts.outDir)) : path.resolve(opts.outRoot ?? path.join(repoDir, 'build', 'bundles'));
  fs.mkdirSync(outRoot, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(outRoot, '.tmp-'));
  try {
    const versionInfo = opts.versionInfo ?? captureVersionInfo(repoDir);
    await bundleAgent(repoDir, path.join(tmp, AGENT_FILE));
    writeVersionInfo(path.join(tmp, VERSION_FILE_NAME), versionInfo);
    for (const f of INSTALLER_FILES) {
      const src = path.join(repoDir, 'agent', 'install', f);
      if (!fs.existsSync(src)) throw new BundleBuildError(`cannot build the agent bundle: ${src} is missing`);
      fs.copyFileSync(src, path.join(tmp, f));
    }
    fs.chmodSync(tmp, 0o755);
    fs.chmodSync(path.join(tmp, 'install.sh'), 0o755);
    fs.chmodSync(path.join(tmp, 'uninstall.sh'), 0o755);
    fs.writeFileSync(path.join(tmp, REQUIREMENTS_FILE), requirementsText(opts.requirements ?? []));
    const hash = bundleHash(tmp);
    fs.writeFileSync(path.join(tmp, BUNDLE_HASH_FILE), hash + '\n');

    const dir = opts.outDir ? path.resolve(opts.outDir) : path.join(outRoot, hash.slice(0, 16));
    const complete = (): boolean => fs.existsSync(path.join(dir, BUNDLE_HASH_FILE));
    if (opts.outDir) fs.rmSync(dir, { recursive: true, force: true });
    // A complete bundle of this hash is identical but for deployed_at: it is kept, never deleted and
    // replaced, because another process (a concurrent `d8 up`, the daemon) may be uploading from it.
    let kept = !opts.outDir && complete();
    if (!kept) {
      try {
        fs.renameSync(tmp, dir);
      } catch (err) {
        // Another build of the same tree won the race; a dir without BUNDLE_HASH is an older master's leftover.
        if (!complete()) {
          fs.rmSync(dir, { recursive: true, force: true });
          try { fs.renameSync(tmp, dir); } catch { if (!complete()) throw err; }
        }
        kept = fs.existsSync(tmp);
      }
    }
    let info = versionInfo;
    if (kept) {
      fs.rmSync(tmp, { recursive: true, force: true });
      const now = new Date();
      fs.utimesSync(dir, now, now); // recent again for pruneOldBundles
      info = readVersionInfo(path.join(dir, VERSION_FILE_NAME));
    }
    if (!opts.outDir) pruneOldBundles(outRoot, dir);
    return { dir, hash, versionInfo: info, files: [...BUNDLE_FILES, BUNDLE_HASH_FILE] };
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Bundles kept per output root; older ones are removed (a deploy in flight uses a recent one). */
const KEEP_BUNDLES = 8;

/** Removes all but the newest KEEP_BUNDLES `<hash16>` directories under `outRoot` (never `keep`). */
export function pruneOldBundles(outRoot: string, keep: string): void {
  try {
    const dirs = fs.readdirSync(outRoot)
      .filter((n) => /^[0-9a-f]{16}$/.test(n))
      .map((n) => ({ p: path.join(outRoot, n), t: fs.statSync(path.join(outRoot, n)).mtimeMs }))
      .sort((a, b) => b.t - a.t);
    for (const d of dirs.slice(KEEP_BUNDLES)) if (d.p !== keep) fs.rmSync(d.p, { recursive: true, force: true });
  } catch { /* pruning is best effort */ }
}

/** Reads an existing bundle directory back (e.g. one built by `d8 bundle -o`). */
export function readBundle(dir: string): BundleInfo {
  const abs = path.resolve(dir);
  for (const f of [...BUNDLE_FILES, BUNDLE_HASH_FILE]) {
    if (!fs.existsSync(path.join(abs, f))) throw new BundleBuildError(`${abs} is not an agent bundle: ${f} is missing`);
  }
  const hash = fs.readFileSync(path.join(abs, BUNDLE_HASH_FILE), 'utf8').trim();
  if (bundleHash(abs) !== hash) throw new BundleBuildError(`${abs}: content does not match its BUNDLE_HASH (edited after the build?)`);
  return { dir: abs, hash, versionInfo: readVersionInfo(path.join(abs, VERSION_FILE_NAME)), files: [...BUNDLE_FILES, BUNDLE_HASH_FILE] };
}

