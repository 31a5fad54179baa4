/** Runs a real process to its end and collects its output (the d8 CLI, install.sh under dash, …). */
import { spawn } from 'child_process';
import path from 'path';

export interface Run { code: number | null; stdout: string; stderr: string }

export function runProcess(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (child.stdin) {
      child.stdin.on('error', () => { /* the process may exit before reading stdin */ });
      child.stdin.end(opts.stdin);
    }
  });
}

/** `d8 ARGS` through bin/d8.js (dist/: build first), from the repository root. */
export function runD8(repo: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return runProcess(process.execPath, [path.join(repo, 'bin', 'd8.js'), ...args], { env, cwd: repo });
}
