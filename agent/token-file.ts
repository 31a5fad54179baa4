/**
 * Keeps the agent's accepted tokens in its token file (one per line, mode 0600) when a rotation
 * changes them, so a restart comes back with the same set. Written through a temporary file and a
 * rename where the directory allows it; a bind-mounted file (a container's) is rewritten in place.
 */
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';

export class TokenFileUnwritableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenFileUnwritableError';
  }
}

/** Throws TokenFileUnwritableError (before anything changes) when `file` cannot be rewritten. */
export function checkTokenFileWritable(file: string | null): asserts file is string {
  if (file === null) {
    throw new TokenFileUnwritableError('this agent takes its token from D8_AGENT_TOKEN, not a token file: it cannot keep a new token across a restart; redeploy it instead');
  }
  try {
    fs.accessSync(file, fs.constants.W_OK);
  } catch (err) {
    throw new TokenFileUnwritableError(`this agent cannot rewrite its token file (${(err as NodeJS.ErrnoException).code ?? 'error'}; a read-only mount?): redeploy it to change its token`);
  }
}

export function writeTokenFile(file: string, tokens: string[]): void {
  const text = tokens.join('\n') + '\n';
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${crypto.randomBytes(4).toString('hex')}`);
  try {
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch {
    fs.rmSync(tmp, { force: true });
    fs.writeFileSync(file, text, { mode: 0o600 });
  }
}
