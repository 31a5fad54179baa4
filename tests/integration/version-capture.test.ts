import fs from 'fs';
import os from 'os';
import path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { VersionInfoSchema } from '../../core/version-info';

const REPO = path.resolve(__dirname, '..', '..');
const D8 = path.join(REPO, 'bin', 'd8.js');
const SCRIPT = path.join(REPO, 'dist', 'scripts', 'capture-version.js');

function run(file: string, args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [file, ...args], { cwd, encoding: 'utf8', env: { ...process.env, D8_LOG_FORMAT: 'json' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
}

describe('version capture (d8 version capture, scripts/capture-version)', () => {
  let repo: string;
  let bare: string;

  beforeAll(() => {
    repo = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-version-repo-'));
    bare = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-version-nogit-'));
    git(repo, 'init', '-q', '-b', 'trunk');
    git(repo, 'config', 'user.email', 't@example.invalid');
    git(repo, 'config', 'user.name', 't');
    fs.writeFileSync(path.join(repo, 'package.json'), JSON.stringify({ name: 'x', version: '1.2.3' }));
    fs.writeFileSync(path.join(repo, 'a.txt'), 'one\n');
    git(repo, 'add', '.');
    git(repo, 'commit', '-qm', 'first');
  });

  afterAll(() => {
    fs.rmSync(repo, { recursive: true, force: true });
    fs.rmSync(bare, { recursive: true, force: true });
  });

  it('writes branch, the full commit, the package version, deployed_at and dirty=false from git', () => {
    const before = Date.now();
    const r = run(D8, ['version', 'capture', '--json'], repo);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const info = VersionInfoSchema.parse(JSON.parse(fs.readFileSync(path.join(repo, 'version_info.json'), 'utf8')));
    expect(info).toMatchObject({ branch: 'trunk', commit: git(repo, 'rev-parse', 'HEAD'), version: '1.2.3', dirty: false });
    expect(info.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(Date.parse(info.deployed_at)).toBeGreaterThanOrEqual(before - 1000);
    expect(JSON.parse(r.stdout)).toEqual(info);
  });

  it('marks a tree with uncommitted changes to tracked files as dirty, and follows a new commit', () => {
    fs.writeFileSync(path.join(repo, 'a.txt'), 'two\n');
    expect(run(SCRIPT, [], repo).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(repo, 'version_info.json'), 'utf8')).dirty).toBe(true);
    git(repo, 'commit', '-qam', 'second');
    const out = path.join(repo, 'elsewhere.json');
    const r = run(SCRIPT, ['--output', out], repo);
    expect(r.code).toBe(0);
    const info = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(info.commit).toBe(git(repo, 'rev-parse', 'HEAD'));
    expect(info.dirty).toBe(false);
  });

  it('outside a git checkout fails with a message naming the fix, and keeps an existing file when asked', () => {
    const fail = run(D8, ['version', 'capture'], bare);
    expect(fail.code).not.toBe(0);
    expect(fail.stderr).toContain('is not inside a git checkout');
    expect(fail.stderr).toContain('--keep-existing');
    expect(fs.existsSync(path.join(bare, 'version_info.json'))).toBe(false);

    const existing = fs.readFileSync(path.join(repo, 'version_info.json'), 'utf8');
    fs.writeFileSync(path.join(bare, 'version_info.json'), existing);
    const kept = run(SCRIPT, ['--keep-existing'], bare);
    expect(kept.code).toBe(0);
    expect(kept.stdout).toContain('kept the existing file');
    expect(fs.readFileSync(path.join(bare, 'version_info.json'), 'utf8')).toBe(existing);

    fs.writeFileSync(path.join(bare, 'version_info.json'), '{"commit": "abc"}');
    const bad = run(SCRIPT, ['--keep-existing'], bare);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/version file .*version_info\.json: branch/);
  });
});
