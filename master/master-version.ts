/**
 * The master's own version: captured into version_info.json at start (core/version-info.ts), then
 * the repository's HEAD is re-read before every sweep so a `git pull` is noticed within one
 * interval without a restart, and a watch on the repository's HEAD and branch refs notices it at
 * once (the re-read stays as the fallback where a watch is not possible).
 */
import { execFileSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import type { Logger } from '../core/logger';
import { captureToFile, gitHead, readVersionInfo, shortCommit, VERSION_FILE_NAME, type VersionInfo } from '../core/version-info';

export class MasterVersion {
  private info: VersionInfo;
  private readonly file: string;

  constructor(private readonly repoDir: string, private readonly logger: Logger) {
    const r = captureToFile({ repoDir, keepExisting: true });
    this.file = r.file;
    this.info = r.info;
    logger.info({ commit: r.info.commit, branch: r.info.branch, dirty: r.info.dirty, kept: r.kept }, `master version ${shortCommit(r.info.commit)} (${r.info.branch})`);
  }

  get current(): VersionInfo {
    return this.info;
  }

  /** Re-reads HEAD; returns the previous commit when it changed (and re-captures the file), else null. */
  refresh(): string | null {
    let head: string;
    try {
      head = gitHead(this.repoDir);
    } catch {
      return null; // not a checkout (an installed copy): the captured file stays the identity
    }
    if (head === this.info.commit) return null;
    const previous = this.info.commit;
    try {
      this.info = captureToFile({ repoDir: this.repoDir, output: this.file }).info;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'HEAD changed but version_info.json could not be rewritten; using HEAD');
      this.info = { ...this.info, commit: head, deployed_at: new Date().toISOString() };
    }
    this.logger.info({ previous, commit: this.info.commit }, `master HEAD changed: ${shortCommit(previous)} -> ${shortCommit(this.info.commit)}`);
    return previous;
  }

  /**
   * Calls `onMove` (debounced) when HEAD may have moved: HEAD, packed-refs or the checked-out
   * branch's ref was rewritten (git replaces them by rename, which inotify reports on their
   * directory: directories are watched, never the files, whose inode a rename replaces), and HEAD
   * now names another commit than the one this master runs. Returns the function that stops watching.
   */
  watch(onMove: () => void, debounceMs = 100): () => void {
    let dirs: { gitDir: string; commonDir: string };
    try {
      const out = execFileSync('git', ['rev-parse', '--absolute-git-dir', '--git-common-dir'], { cwd: this.repoDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n');
      dirs = { gitDir: out[0], commonDir: path.resolve(this.repoDir, out[1]) };
    } catch {
      return () => undefined; // not a checkout: nothing moves
    }
    let timer: NodeJS.Timeout | null = null;
    let branchWatch: fs.FSWatcher | null = null;
    const fire = (): void => {
      timer = null;
      let head: string;
      try {
        head = gitHead(this.repoDir);
      } catch {
        return;
      }
      if (head !== this.info.commit) onMove();
    };
    const poke = (): void => {
      if (!timer) timer = setTimeout(fire, debounceMs);
    };
    const add = (dir: string, relevant: (name: string) => boolean): fs.FSWatcher | null => {
      try {
        const w = fs.watch(dir, { persistent: false }, (_e, name) => { if (name === null || relevant(String(name))) poke(); });
        w.on('error', (err) => this.logger.warn({ dir, err: err.message }, 'stopped watching the repository; HEAD is still re-read before every sweep'));
        return w;
      } catch (err) {
        this.logger.warn({ dir, err: (err as Error).message }, 'cannot watch the repository for HEAD changes; HEAD is re-read before every sweep instead');
        return null;
      }
    };
    // The directory holding the checked-out branch's ref (refs/heads, or deeper for a/b branch names).
    const armBranch = (): void => {
      branchWatch?.close();
      branchWatch = null;
      let ref: string;
      try {
        ref = execFileSync('git', ['symbolic-ref', '-q', 'HEAD'], { cwd: this.repoDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      } catch {
        return; // detached HEAD: HEAD itself is the ref
      }
      const file = path.join(dirs.commonDir, ref);
      const name = path.basename(file);
      branchWatch = add(path.dirname(file), (n) => n === name);
    };
    const onTop = (name: string): boolean => {
      if (name === 'HEAD') armBranch(); // a checkout may have switched the branch
      return name === 'HEAD' || name === 'packed-refs';
    };
    const watchers = [add(dirs.gitDir, onTop), dirs.commonDir !== dirs.gitDir ? add(dirs.commonDir, onTop) : null];
    armBranch();
    return () => {
      if (timer) clearTimeout(timer);
      for (const w of [...watchers, branchWatch]) w?.close();
    };
  }

  static fileIn(repoDir: string): string {
    return path.join(repoDir, VERSION_FILE_NAME);
  }

  static read(repoDir: string): VersionInfo | null {
    try {
      return readVersionInfo(MasterVersion.fileIn(repoDir));
    } catch {
      return null;
    }
  }
}
