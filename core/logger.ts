import pino, { Logger } from 'pino';
import { Redactor, environmentSecrets } from './redact';

export type { Logger } from 'pino';

const REDACT_PATHS = [
  'token', 'agentToken', 'authorization', 'password', 'privateKey', 'sshPrivateKey', 'passphrase',
  '*.token', '*.agentToken', '*.authorization', '*.password', '*.privateKey', '*.sshPrivateKey',
  'req.headers.authorization', 'headers.authorization', 'headers.Authorization',
];

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };

/** One JSON log line as `12:34:56 INFO  message key=value …`, for a person at a terminal. */
export function prettyLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { level, time, msg, pid: _pid, hostname: _host, name: _name, ...rest } = o;
  const t = typeof time === 'number' ? new Date(time).toTimeString().slice(0, 8) : '';
  const extra = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${t} ${LEVEL_NAMES[level as number] ?? String(level)} ${String(msg ?? '')}${extra ? `  ${extra}` : ''}\n`;
}

/** JSON lines unless a person is watching: D8_LOG_FORMAT=json|pretty overrides the TTY guess. */
function wantsPretty(): boolean {
  const f = process.env.D8_LOG_FORMAT;
  if (f === 'json') return false;
  if (f === 'pretty') return true;
  return process.stderr.isTTY === true;
}

export interface LoggerOptions {
  name: string;
  level?: string;
  /** Secret values to scrub from every message (in addition to D8's environment secrets). */
  secrets?: string[];
  /** Scrubs with this (and D8's environment secrets) instead: one that learns rotated tokens (core/fleet-secrets.ts). */
  redactor?: Redactor;
  destination?: pino.DestinationStream;
}

/**
 * pino with two layers of protection: structured redaction of secret-named keys, and a scrub of
 * known secret values from every formatted line (a token can hide inside an error message).
 */
export function createLogger(opts: LoggerOptions): Logger {
  const redactor = (opts.redactor ?? new Redactor()).with(...environmentSecrets(), ...(opts.secrets ?? []));
  const level = opts.level ?? process.env.D8_LOG_LEVEL ?? 'info';
  const inner = opts.destination ?? pino.destination({ dest: 2, sync: true });
  const pretty = !opts.destination && wantsPretty();
  const scrubbing: pino.DestinationStream = {
    write: (line: string) => inner.write(pretty ? prettyLine(redactor.text(line)) : redactor.text(line)),
  };
  return pino({ name: opts.name, level, redact: { paths: REDACT_PATHS, censor: '***' } }, scrubbing);
}
