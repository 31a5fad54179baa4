import pino, { Logger } from 'pino';
import { Redactor, environmentSecrets } from './redact';

export type { Logger } from 'pino';

const REDACT_PATHS = [
  'token', 'agentToken', 'authorization', 'password', 'privateKey', 'sshPrivateKey', 'passphrase',
  '*.token', '*.agentToken', '*.authorization', '*.password', '*.privateKey', '*.sshPrivateKey',
  'req.headers.authorization', 'headers.authorization', 'headers.Authorization',
];

export interface LoggerOptions {
  name: string;
  level?: string;
  /** Secret values to scrub from every message (in addition to D8's environment secrets). */
  secrets?: string[];
  destination?: pino.DestinationStream;
}

/**
 * pino with two layers of protection: structured redaction of secret-named keys, and a scrub of
 * known secret values from every formatted line (a token can hide inside an error message).
 */
export function createLogger(opts: LoggerOptions): Logger {
  const redactor = new Redactor([...environmentSecrets(), ...(opts.secrets ?? [])]);
  const level = opts.level ?? process.env.D8_LOG_LEVEL ?? 'info';
  const inner = opts.destination ?? pino.destination({ dest: 2, sync: true });
  const scrubbing: pino.DestinationStream = { write: (line: string) => inner.write(redactor.text(line)) };
  return pino({ name: opts.name, level, redact: { paths: REDACT_PATHS, censor: '***' } }, scrubbing);
}
