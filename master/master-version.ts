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
   * Calls `onMove` (debounced) when HEAD may have moved: HEAD, packed-refs or a branch ref was
   * rewritten (git replaces them by rename, which inotify reports on the directory), and HEAD now
   * names another commit than the one this master runs. Returns the function that stops watching.
   */
  watch(onMove: () => void, debounceMs = 100): () => void {
    let dirs: { gitDir: string; commonDir: string };
    try {
      const out = execFileSync('git', ['rev-parse', '--absolute-git-dir', '--git-common-dir'], { cwd: this.repoDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n');
      dirs = { gitDir: out[0], commonDir: path.resolve(this.repoDir, out[1]) };
    } catch {
      return () => undefined; // not a checkout: nothing moves
    }
    const watchers: fs.FSWatcher[] = [];
    let timer: NodeJS.Timeout | null = null;
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
    const add = (dir: string, recursive: boolean, relevant: (name: string) => boolean): void => {
      try {
        const w = fs.watch(dir, { recursive, persistent: false }, (_e, name) => { if (name === null || relevant(String(name))) poke(); });
        w.on('error', (err) => this.logger.warn({ dir, err: err.message }, 'stopped watching the repository; HEAD is still re-read before every sweep'));
        watchers.push(w);
      } catch (err) {
        this.logger.warn({ dir, err: (err as Error).message }, 'cannot watch the repository for HEAD changes; HEAD is re-read before every sweep instead');
      }
    };
    const top = (name: string): boolean => name === 'HEAD' || name === 'packed-refs';
    add(dirs.gitDir, false, top);
    if (dirs.commonDir !== dirs.gitDir) add(dirs.commonDir, false, top);
    add(path.join(dirs.commonDir, 'refs', 'heads'), true, (name) => !name.endsWith('.lock'));
    return () => {
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
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
