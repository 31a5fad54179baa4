/**
 * Drift classes from git ancestry in the master's repository (after SaltStack's manage.versions):
 * equal, behind (the slave's commit is an ancestor of the master's), ahead, diverged, unknown (no
 * commit, or a commit the master's repository does not have).
 */
import { execFile } from 'child_process';
import type { Drift } from '../../core/fleet-state';

export { DRIFT_CLASSES, type Drift } from '../../core/fleet-state';

/** Pure classification from the two ancestry answers. */
export function classifyAncestry(a: { slaveKnown: boolean; same: boolean; slaveIsAncestor: boolean; masterIsAncestor: boolean }): Drift {
  if (a.same) return 'equal';
  if (!a.slaveKnown) return 'unknown';
  if (a.slaveIsAncestor) return 'behind';
  if (a.masterIsAncestor) return 'ahead';
  return 'diverged';
}

const HEX40 = /^[0-9a-f]{40}$/;

function git(repoDir: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    execFile('git', args, { cwd: repoDir, timeout: 10_000 }, (err) => {
      if (!err) return resolve(0);
      const code = (err as NodeJS.ErrnoException & { code?: number | string }).code;
      resolve(typeof code === 'number' ? code : 128);
    });
  });
}

/**
 * Classifies with `git merge-base --is-ancestor` in `repoDir`. Answers are cached per commit pair
 * (ancestry between two fixed commits never changes), so a sweep costs no git process once warm.
 */
export class DriftClassifier {
  private readonly cache = new Map<string, Drift>();

  constructor(private readonly repoDir: string) {}

  async classify(masterCommit: string, slaveCommit: string | null | undefined): Promise<Drift> {
    if (!slaveCommit || !HEX40.test(slaveCommit) || !HEX40.test(masterCommit)) return 'unknown';
    if (slaveCommit === masterCommit) return 'equal';
    const key = `${masterCommit}:${slaveCommit}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const known = (await git(this.repoDir, ['cat-file', '-e', `${slaveCommit}^{commit}`])) === 0;
    let drift: Drift;
    if (!known) {
      drift = 'unknown'; // not cached: a later fetch may bring the commit in
    } else {
      const slaveIsAncestor = (await git(this.repoDir, ['merge-base', '--is-ancestor', slaveCommit, masterCommit])) === 0;
      const masterIsAncestor = !slaveIsAncestor && (await git(this.repoDir, ['merge-base', '--is-ancestor', masterCommit, slaveCommit])) === 0;
      drift = classifyAncestry({ slaveKnown: true, same: false, slaveIsAncestor, masterIsAncestor });
      this.cache.set(key, drift);
    }
    return drift;
  }
}
