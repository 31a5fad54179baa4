import os from 'os';
import path from 'path';
import fs from 'fs';

/** Where the master keeps its state, build logs and generated secrets (`D8_HOME`, default ~/.d8). */
export function d8Home(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.D8_HOME && env.D8_HOME.trim() !== '' ? env.D8_HOME : path.join(os.homedir(), '.d8');
  return path.resolve(home);
}

/**
 * Creates `dir` (and parents) with mode 0700 when missing, and makes an existing one 0700 (it holds
 * the store, build logs and generated tokens), saying so on stderr (`say`) when it changes the mode.
 */
export function ensurePrivateDir(dir: string, say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(dir);
  const mode = st.mode & 0o777;
  // A shared directory (sticky like /tmp, or someone else's) is never ours to change.
  const ours = (st.mode & 0o1000) === 0 && st.uid === process.getuid?.();
  if (ours && mode & 0o077) {
    const was = `0${mode.toString(8)}`;
    try {
      fs.chmodSync(dir, 0o700);
      say(`d8: ${dir} was mode ${was}, readable by others: changed it to 0700 (it holds the master's state and secrets)`);
    } catch (err) {
      say(`d8: ${dir} is mode ${was}, readable by others, and cannot be made 0700 (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): run chmod 700 ${dir}`);
    }
  }
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
