/** Small pieces the benches that drive a real `d8 master` share: progress lines, medians, git, a repository to commit releases in. */
import { execFileSync, spawn } from 'child_process';
import fs from 'fs';
import path from 'path';

export const say = (s: string): void => { process.stderr.write(`${s}\n`); };
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** CPU time this machine spent busy so far (all processes, every core: /proc/stat), in ms. */
export function machineCpuMs(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 8).map(Number);
  const busy = f[0] + f[1] + f[2] + f[5] + f[6]; // user nice system irq softirq (not idle, iowait)
  return (busy * 1000) / 100; // USER_HZ is 100 on Linux
}

export interface Ran { code: number | null; stdout: string; stderr: string }

/** Runs `bin` to its end (stdin empty) and collects what it printed; rejects only when it cannot start. */
export function run(bin: string, args: string[], o: { cwd?: string; env: NodeJS.ProcessEnv }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Milliseconds as seconds with one decimal. */
export const fmt = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'b@b' };
export const git = (dir: string, ...args: string[]): string => execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: gitEnv }).trim();

/**
 * `repo` (an empty directory) as a copy of this checkout's core/ and agent/ (the master builds the
 * agent bundle from it), with `files` written into it, committed once: its HEAD can then move.
 */
export function benchRepo(checkout: string, repo: string, files: Record<string, string>): void {
  for (const d of ['core', 'agent']) fs.cpSync(path.join(checkout, d), path.join(repo, d), { recursive: true });
  fs.copyFileSync(path.join(checkout, 'package.json'), path.join(repo, 'package.json'));
  fs.symlinkSync(path.join(checkout, 'node_modules'), path.join(repo, 'node_modules'));
  fs.writeFileSync(path.join(repo, '.gitignore'), 'version_info.json\nnode_modules\nbuild/\n');
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(repo, name), text);
  git(repo, 'init', '-q', '-b', 'main');
  git(repo, 'add', '.');
  git(repo, 'commit', '-q', '-m', 'fleet');
}
