import os from 'os';
import path from 'path';
import fs from 'fs';

/** Where the master keeps its state, build logs and generated secrets (`D8_HOME`, default ~/.d8). */
export function d8Home(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.D8_HOME && env.D8_HOME.trim() !== '' ? env.D8_HOME : path.join(os.homedir(), '.d8');
  return path.resolve(home);
}

/** Creates `dir` (and parents) with mode 0700 when missing; returns it. */
export function ensurePrivateDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** The repository root (where package.json lives), from both `core/` and `dist/core/`. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'Pulumi.yaml'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the D8 Fleet repository root above ${__dirname}`);
    dir = parent;
  }
}
