/** Shared bits of the Telegram integration tests (not a test file itself). */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { Writable } from 'stream';
import { createLogger, type Logger } from '../../core/logger';

export interface CapturedLogger { logger: Logger; lines: () => Array<Record<string, unknown>>; raw: () => string }

/** A real pino logger (with the project's redaction) writing to memory. */
export function memoryLogger(name: string, secrets: string[] = []): CapturedLogger {
  let raw = '';
  const dest = new Writable({ write(chunk, _enc, cb) { raw += chunk.toString(); cb(); } });
  const logger = createLogger({ name, level: 'debug', secrets, destination: { write: (s: string) => dest.write(s) } });
  return {
    logger,
    raw: () => raw,
    lines: () => raw.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `d8-${prefix}-`));
}

export async function until<T>(check: () => T | null | undefined | false, timeoutMs: number, what: string, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
