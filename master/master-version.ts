/**
 * The master's own version: captured into version_info.json at start (core/version-info.ts), then
 * the repository's HEAD is re-read before every sweep so a `git pull` is noticed within one
 * interval without a restart.
 */
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
