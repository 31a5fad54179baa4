/**
 * The swarm image's docker build context: only what the Dockerfile copies, and nothing that changes
 * between two runs of the program for one release. The bundle's version_info.json carries the build
 * time (`deployed_at`), which would change the context digest on every `pulumi up` (a rebuild, a new
 * dangling image, in registry mode a new digest that restarts every task); the context's copy has it
 * removed, and the agent reports its own start time instead (core/version-info.ts).
 *
 * The directory (`build/swarm-context/<hash16>` of the checkout, so the master and a person running
 * `pulumi up` there give the provider the same path) is named by the bundle hash, which covers the
 * commit; it is written under a temporary name and renamed, and reused while its content is what this
 * release needs.
 */
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { AGENT_FILE, pruneOldBundles, REQUIREMENTS_FILE } from '../agent/bundle/build';
import { releaseOnlyVersionInfo, VERSION_FILE_NAME } from '../core/version-info';
import type { BundleRef } from './bundle-ref';
import { repoRoot } from '../core/paths';

/** Every file of the context (what agent/install/Dockerfile copies, and the Dockerfile). */
export const SWARM_CONTEXT_FILES = ['Dockerfile', AGENT_FILE, REQUIREMENTS_FILE, VERSION_FILE_NAME] as const;

/** The bytes of each context file for this release. */
export function swarmContextFiles(bundle: BundleRef): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  for (const name of SWARM_CONTEXT_FILES) {
    files[name] = name === VERSION_FILE_NAME
      ? Buffer.from(JSON.stringify(releaseOnlyVersionInfo(bundle.versionInfo), null, 2) + '\n')
      : fs.readFileSync(path.join(bundle.dir, name));
  }
  return files;
}

function holds(dir: string, files: Record<string, Buffer>): boolean {
  try {
    const names = fs.readdirSync(dir).sort();
    if (names.join('\0') !== Object.keys(files).sort().join('\0')) return false;
    return names.every((n) => fs.readFileSync(path.join(dir, n)).equals(files[n]));
  } catch {
    return false;
  }
}

/** Writes (or reuses) the context directory for `bundle`; returns its absolute path. */
export function stageSwarmContext(bundle: BundleRef, stageRoot = path.join(repoRoot(), 'build', 'swarm-context')): string {
  const files = swarmContextFiles(bundle);
  const dir = path.join(stageRoot, bundle.hash.slice(0, 16));
  if (holds(dir, files)) {
    const now = new Date();
    fs.utimesSync(dir, now, now); // recent again for the pruning below
    return dir;
  }
  fs.mkdirSync(stageRoot, { recursive: true, mode: 0o755 });
  const tmp = path.join(stageRoot, `.tmp-${crypto.randomBytes(6).toString('hex')}`);
  try {
    fs.mkdirSync(tmp, { mode: 0o755 });
    for (const [name, content] of Object.entries(files)) {
      fs.writeFileSync(path.join(tmp, name), content, { mode: 0o644 });
      fs.chmodSync(path.join(tmp, name), 0o644);
    }
    fs.chmodSync(tmp, 0o755);
    fs.rmSync(dir, { recursive: true, force: true });
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      // Another run staged the same release in between: theirs is byte for byte ours.
      if (!holds(dir, files)) throw err;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  pruneOldBundles(stageRoot, dir);
  return dir;
}
