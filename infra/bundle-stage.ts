/**
 * Where a remote slave's bundle copy starts and lands.
 *
 * CopyToRemote creates only the LAST element of `remotePath` ("it's an error when additional
 * elements don't exist", as the real provider says). The bundle lives at `.d8-agent/bundles/<hash16>`,
 * two levels below a directory that a fresh host does not have and that uninstall.sh removes. So the
 * copy targets the first element (`.d8-agent`, created when missing) and its source is a local staging
 * tree that mirrors the rest (`<stage>/bundles/<hash16>/…`), copied with a trailing slash (content into
 * remotePath). The tree is hard-linked from the bundle (copied where links are impossible), built
 * under a temporary name and renamed, and reused while its BUNDLE_HASH matches.
 */
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { BUNDLE_HASH_FILE } from '../agent/bundle/build';
import type { BundleRef } from './bundle-ref';

/** A file copied along with the bundle, to `remote` (relative to the home, under the bundle's first element). */
export interface StagedExtra {
  local: string;
  remote: string;
}

export interface RemoteCopy {
  /** Local directory, with a trailing slash: its content lands inside remotePath. */
  source: string;
  /** First element of the bundle's remote directory (relative to the user's home). */
  remotePath: string;
}

export function defaultStageRoot(): string {
  return path.join(os.tmpdir(), `d8-bundle-stage-${os.userInfo().uid}`);
}

function linkOrCopyTree(src: string, dest: string): void {
  fs.mkdirSync(dest, { recursive: true });
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    const from = path.join(src, e.name);
    const to = path.join(dest, e.name);
    if (e.isDirectory()) linkOrCopyTree(from, to);
    else {
      try {
        fs.linkSync(from, to);
      } catch {
        fs.copyFileSync(from, to);
      }
    }
  }
}

/** Stages `bundle` for a copy to `remoteDir` (relative, as agent/install/command.ts's remoteBundleDir returns). */
export function stageRemoteCopy(bundle: BundleRef, remoteDir: string, stageRoot = defaultStageRoot(), extras: StagedExtra[] = []): RemoteCopy {
  const parts = remoteDir.split('/').filter((p) => p !== '');
  if (remoteDir.startsWith('/') || parts.length < 2 || parts.some((p) => p === '.' || p === '..')) {
    throw new RangeError(`remote bundle directory must be relative with at least two elements (got ${JSON.stringify(remoteDir)})`);
  }
  const [head, ...tail] = parts;
  const rels = extras.map((e) => {
    if (!e.remote.startsWith(`${head}/`)) throw new RangeError(`${e.remote} is not under ${head}/, where the bundle copy lands`);
    return { local: e.local, rel: e.remote.slice(head.length + 1) };
  });
  const extrasKey = rels.length ? `-${crypto.createHash('sha256').update(rels.map((e) => `${e.rel}\0${e.local}`).join('\0')).digest('hex').slice(0, 12)}` : '';
  const stage = path.join(stageRoot, bundle.hash.slice(0, 16) + extrasKey);
  const placed = path.join(stage, ...tail);
  const ready = (): boolean => {
    try {
      return rels.every((e) => fs.existsSync(path.join(stage, e.rel))) &&
        fs.readFileSync(path.join(placed, BUNDLE_HASH_FILE), 'utf8').trim() === bundle.hash;
    } catch {
      return false;
    }
  };
  if (!ready()) {
    fs.mkdirSync(stageRoot, { recursive: true, mode: 0o700 });
    const tmp = path.join(stageRoot, `.tmp-${crypto.randomBytes(6).toString('hex')}`);
    try {
      linkOrCopyTree(bundle.dir, path.join(tmp, ...tail));
      for (const e of rels) {
        const to = path.join(tmp, e.rel);
        fs.mkdirSync(path.dirname(to), { recursive: true });
        try {
          fs.linkSync(e.local, to);
        } catch {
          fs.copyFileSync(e.local, to);
        }
      }
      fs.rmSync(stage, { recursive: true, force: true });
      try {
        fs.renameSync(tmp, stage);
      } catch (err) {
        // Another process staged the same bundle in between: theirs is as good as ours.
        if (!ready()) throw err;
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { source: `${stage}/`, remotePath: head };
}
