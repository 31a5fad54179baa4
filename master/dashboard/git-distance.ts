/** How many commits a slave is behind (or ahead of) the master, for the fleet page; cached per pair. */
import { execFile } from 'child_process';

const HEX40 = /^[0-9a-f]{40}$/;

export interface Distance { behind: number; ahead: number }

export class GitDistance {
  private readonly cache = new Map<string, Distance | null>();

  constructor(private readonly repoDir: string) {}

  /** Commits in master not in slave (behind) and in slave not in master (ahead); null when git cannot tell. */
  async between(masterCommit: string | null, slaveCommit: string | null): Promise<Distance | null> {
    if (!masterCommit || !slaveCommit || !HEX40.test(masterCommit) || !HEX40.test(slaveCommit)) return null;
    if (masterCommit === slaveCommit) return { behind: 0, ahead: 0 };
    const key = `${masterCommit}:${slaveCommit}`;
    if (this.cache.has(key)) return this.cache.get(key) ?? null;
    const out = await new Promise<string | null>((resolve) => {
      execFile('git', ['rev-list', '--left-right', '--count', `${masterCommit}...${slaveCommit}`], { cwd: this.repoDir, timeout: 10_000 },
        (err, stdout) => resolve(err ? null : stdout));
    });
    const m = out?.trim().match(/^(\d+)\s+(\d+)$/);
    const d = m ? { behind: Number(m[1]), ahead: Number(m[2]) } : null;
    // An unknown commit is not cached: a later fetch may bring it in.
    if (d) this.cache.set(key, d);
    return d;
  }
}
