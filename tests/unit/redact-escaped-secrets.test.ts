import fs from 'fs';
import os from 'os';
import path from 'path';
import { Writable } from 'stream';
import { createLogger } from '../../core/logger';
import { Redactor } from '../../core/redact';
import { BuildLog } from '../../master/deploy/build-log';

// A secret that JSON spells differently from itself: a quote, a backslash and a newline.
const SECRET = 'pw-7f3a"quote\\slash\nline-9c2e';
const FRAGMENTS = ['pw-7f3a', 'quote', 'slash', 'line-9c2e'];

/** Fails if any piece of the secret survives, whatever escaping the text went through. */
function expectNoTrace(text: string): void {
  for (const f of FRAGMENTS) expect(text).not.toContain(f);
}

function capture(): { stream: Writable & { write: (s: string) => boolean }; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  return { stream: stream as Writable & { write: (s: string) => boolean }, text: () => lines.join('') };
}

describe('a secret holding ", \\ and a newline', () => {
  it('never reaches a pino line: in the message, in a field, or inside JSON quoted in a field', () => {
    const { stream, text } = capture();
    const log = createLogger({ name: 't', secrets: [SECRET], destination: stream });
    log.info(`login with ${SECRET} failed`);
    log.warn({ detail: `stdin was ${SECRET}` }, 'auth');
    log.error({ err: `pulumi: ${JSON.stringify({ config: { pass: SECRET } })}` }, 'deploy failed');
    const out = text();
    expect(out.split('\n').filter(Boolean)).toHaveLength(3);
    expect(out).toContain('***');
    expectNoTrace(out);
  });

  it('never reaches a build log, raw or as JSON in a command\'s output', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-redact-'));
    try {
      const log = new BuildLog({ name: 'n1', host: 'h' }, 'direct', 'test', new Redactor([SECRET]));
      log.record({ command: 'install', success: false, stdout: JSON.stringify({ env: { PASS: SECRET } }), stderr: `echo ${SECRET}`, exit_code: 1 });
      const file = log.write(log.document({ status: 'failed', strategy: null, error: `exit 1: ${JSON.stringify(SECRET)}`, commit: null, bundleHash: null, attempts: [] }), { D8_HOME: home });
      const written = fs.readFileSync(file, 'utf8');
      expect(JSON.parse(written).commands[0].stdout).toContain('***');
      expectNoTrace(written);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('never reaches an error message that quotes it as JSON', () => {
    const err = new Error(`the stack refused ${JSON.stringify({ passphrase: SECRET })} and ${SECRET}`);
    const msg = new Redactor([SECRET]).text(err.message);
    expect(msg).toContain('the stack refused');
    expectNoTrace(msg);
  });
});
