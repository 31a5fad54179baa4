/**
 * The releases the master keeps: a copy of every bundle it deployed, in `D8_HOME/releases/<hash16>`,
 * so it can redeploy an older release without rebuilding it from git. The newest `keep` releases stay,
 * plus each slave's last good one and the one it runs; older ones are removed.
 */
import fs from 'fs';
import path from 'path';
import { readBundle, type BundleInfo } from '../../agent/bundle/build';
import type { Logger } from '../../core/logger';
import type { Store } from '../store';

export const DEFAULT_KEEP_RELEASES = 3;

export class ReleaseArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReleaseArchiveError';
  }
}

export class ReleaseArchive {
  readonly root: string;

  constructor(private readonly o: { stack: string; store: Store; home: string; logger: Logger; keep?: number }) {
    this.root = path.join(o.home, 'releases');
  }

  /** Keeps `bundle` (copied once per bundle hash) as the release of its commit. */
  keep(bundle: BundleInfo): void {
    const commit = bundle.versionInfo.commit;
    if (bundle.versionInfo.dirty) return; // a dirty tree is no release: the same commit names other code
    const dir = path.join(this.root, bundle.hash.slice(0, 16));
    if (!fs.existsSync(path.join(dir, 'BUNDLE_HASH'))) {
      fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
      const tmp = fs.mkdtempSync(path.join(this.root, '.tmp-'));
      fs.cpSync(bundle.dir, tmp, { recursive: true });
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(tmp, dir);
    }
    this.o.store.releases.put(this.o.stack, commit, bundle.hash, dir);
    this.prune();
  }

  /** A deploy of `bundle` to `slave` ended well: the release is kept and recorded as what the slave runs. */
  deployed(slave: string, bundle: BundleInfo): void {
    this.keep(bundle);
    this.o.store.releases.setRunning(this.o.stack, slave, bundle.versionInfo.commit);
  }

  /** The kept bundle of `commit`, checked against its hash; null when the master does not keep it. */
  bundleOf(commit: string): BundleInfo | null {
    const row = this.o.store.releases.get(this.o.stack, commit);
    if (!row) return null;
    try {
      return readBundle(row.dir);
    } catch (err) {
      throw new ReleaseArchiveError(`the kept release ${commit.slice(0, 7)} in ${row.dir} is unusable (${(err as Error).message}); it cannot be redeployed`);
    }
  }

  /** Removes releases beyond the newest `keep`, sparing any slave's last good or running one and `also`. */
  prune(also: string[] = []): void {
    const keep = this.o.keep ?? DEFAULT_KEEP_RELEASES;
    const spared = new Set(also);
    for (const s of this.o.store.releases.slaves(this.o.stack)) {
      if (s.good_commit) spared.add(s.good_commit);
      if (s.running_commit) spared.add(s.running_commit);
    }
    const all = this.o.store.releases.list(this.o.stack);
    for (const r of all.slice(keep)) {
      if (spared.has(r.commit)) continue;
      this.o.store.releases.remove(this.o.stack, r.commit);
      if (!all.some((o) => o !== r && o.dir === r.dir && !spared.has(o.commit))) fs.rmSync(r.dir, { recursive: true, force: true });
      this.o.logger.info({ commit: r.commit, dir: r.dir }, `release ${r.commit.slice(0, 7)} no longer kept`);
    }
  }
}
