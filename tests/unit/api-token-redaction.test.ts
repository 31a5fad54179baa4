/**
 * API tokens (`d8api_<id>_<secret>`, core/api-tokens.ts) are scrubbed by shape wherever text leaves a
 * process — a log line, an alert stored in the outbox, any Redactor output — even when nobody told
 * that Redactor the token: only its id (not a secret; `d8 tokens list` shows it) stays readable.
 */
import { Writable } from 'stream';
import { newApiToken } from '../../core/api-tokens';
import { createLogger } from '../../core/logger';
import { REDACTED, Redactor } from '../../core/redact';
import type { Store } from '../../master/store';
import { useTempStore } from '../support/temp-store';

describe('API token redaction', () => {
  const temp = useTempStore();
  let store: Store;
  beforeEach(() => { store = temp(); });

  it('replaces a whole token, a cut-off one and one inside JSON, keeping its id', () => {
    const { id, token } = newApiToken();
    const secret = token.slice(`d8api_${id}_`.length);
    const r = new Redactor();
    const out = r.text(`client sent ${token}; earlier "${token.slice(0, 30)}" and {"token":"${token}"}`);
    expect(out).not.toContain(secret);
    expect(out).not.toContain(secret.slice(0, 8));
    expect(out).toContain(`d8api_${id}_${REDACTED}`);
    expect(r.value({ nested: [`x ${token} y`] })).toEqual({ nested: [`x d8api_${id}_${REDACTED} y`] });
  });

  it('never reaches a log line, in the message or in a field that is not named like a secret', () => {
    const { token } = newApiToken();
    const lines: string[] = [];
    const destination = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const log = createLogger({ name: 't', destination: destination as Writable & { write: (s: string) => boolean } });
    log.warn({ err: `refused ${token}`, path: `/api/requests?t=${token}` }, `client presented ${token}`);
    expect(lines.join('')).toContain('d8api_');
    expect(lines.join('')).not.toContain(token.slice(-43));
  });

  it('never reaches an alert kept in the outbox (what Telegram and the dashboard show)', () => {
    const { token } = newApiToken();
    store.outbox.enqueue({ kind: 'slave_dead', slave: 'a', data: { error_tail: `a task printed ${token}` } });
    const row = store.db.prepare('SELECT payload FROM alerts_outbox').get() as { payload: string };
    expect(row.payload).toContain('a task printed d8api_');
    expect(row.payload).not.toContain(token.slice(-43));
  });
});
