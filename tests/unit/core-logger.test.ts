import { Writable } from 'stream';
import { createLogger, prettyLine } from '../../core/logger';
import { Redactor } from '../../core/redact';

function capture(): { stream: Writable & { write: (s: string) => boolean }; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  return { stream: stream as Writable & { write: (s: string) => boolean }, lines };
}

describe('createLogger', () => {
  it('scrubs a known secret from messages and secret-named keys from objects', () => {
    const secret = 'tok_5f8a2c9e1b7d4a6f0e3c8b2a9d1f7e4c';
    const { stream, lines } = capture();
    const log = createLogger({ name: 't', secrets: [secret], destination: stream });
    log.info({ token: 'abc-visible-only-if-broken', authorization: `Bearer ${secret}` }, `connect failed with ${secret}`);
    const out = lines.join('');
    expect(out).toContain('connect failed with ***');
    expect(out).not.toContain(secret);
    expect(out).not.toContain('abc-visible-only-if-broken');
  });
});

describe('prettyLine', () => {
  it('turns a pino JSON line into time, level, message and fields', () => {
    const line = JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1, 12, 0, 0), pid: 1, hostname: 'h', name: 'n', slave: 'a', n: 2, msg: 'slow' });
    expect(prettyLine(line)).toMatch(/^\d\d:\d\d:\d\d WARN  slow {2}slave=a n=2\n$/);
  });
  it('leaves a non-JSON line alone', () => {
    expect(prettyLine('plain text')).toBe('plain text');
  });
});

describe('Redactor', () => {
  it('replaces private keys, TOKEN= assignments, bearer headers and telegram tokens', () => {
    const r = new Redactor();
    const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----';
    const text = `${key}\nGIT_TOKEN=ghp_aaaaaaaaaaaaaaaaaaaaaaaa Authorization: Bearer xyz.abc bot 123456789:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`;
    const out = r.text(text);
    expect(out).not.toContain('abc\n');
    expect(out).not.toContain('ghp_');
    expect(out).not.toContain('xyz.abc');
    expect(out).not.toContain('123456789:AAAA');
    expect(out).toContain('GIT_TOKEN=***');
  });
});
