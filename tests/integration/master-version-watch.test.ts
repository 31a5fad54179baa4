/**
 * MasterVersion.watch on a real repository: every way HEAD moves (a commit, several in a row, a new
 * branch with a slash in its name, a reset, a checkout of another branch, `git pack-refs`, a detached
 * HEAD) is noticed within a second, without a sweep re-reading HEAD.
 */
import { execFileSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { createLogger } from '../../core/logger';
import { MasterVersion } from '../../master/master-version';
import { waitFor } from '../support/agent-process';

const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };

describe('MasterVersion.watch', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-watch-'));
  const git = (...a: string[]) => execFileSync('git', a, { cwd: dir, env, encoding: 'utf8' }).trim();
  const commit = (name: string): string => {
    fs.writeFileSync(path.join(dir, name), `${name}\n`);
    git('add', name);
    git('commit', '-q', '-m', name);
    return git('rev-parse', 'HEAD');
  };
  let version: MasterVersion;
  let stop: () => void;
  const moves: string[] = [];

  beforeAll(() => {
    git('init', '-q', '-b', 'main');
    fs.writeFileSync(path.join(dir, 'package.json'), '{"name":"w","version":"1.0.0"}\n');
    fs.writeFileSync(path.join(dir, '.gitignore'), 'version_info.json\n');
    git('add', '.');
    git('commit', '-q', '-m', 'base');
    version = new MasterVersion(dir, createLogger({ name: 'watch-test', level: 'silent' }));
    stop = version.watch(() => { if (version.refresh()) moves.push(version.current.commit); }, 50);
  });
  afterAll(() => {
    stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const noticed = (c: string) => waitFor(() => moves[moves.length - 1] === c, 1000, `HEAD ${c.slice(0, 7)} noticed`);

  it('commits, one after another', async () => {
    for (let i = 0; i < 4; i++) await noticed(commit(`c${i}.txt`));
  });
  it('a new branch with a slash in its name, and commits on it', async () => {
    git('checkout', '-q', '-b', 'feature/deep');
    await noticed(commit('f1.txt'));
    await noticed(commit('f2.txt'));
  });
  it('a reset to an older commit', async () => {
    git('reset', '-q', '--hard', 'HEAD~1');
    await noticed(git('rev-parse', 'HEAD'));
  });
  it('a checkout of another branch, then a commit there after pack-refs', async () => {
    git('checkout', '-q', 'main');
    await noticed(git('rev-parse', 'HEAD'));
    git('pack-refs', '--all');
    await noticed(commit('m1.txt'));
  });
  it('a detached HEAD', async () => {
    git('checkout', '-q', '--detach', 'HEAD~2');
    await noticed(git('rev-parse', 'HEAD'));
  });
});
