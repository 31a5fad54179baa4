'use strict';
/**
 * A separate program that uses the package's public client, as another part of a system would:
 * `require('d8-fleet')` (the package's own exports), the token read from a 0600 file named in
 * D8_API_TOKEN_FILE (never argv), the master's address in D8_URL. argv[2] is a JSON list of steps;
 * one JSON line per step is printed: { ok, result } or { ok: false, status, field, message }.
 */
const fs = require('fs');
const { RequestsClient, RequestsApiError } = require('d8-fleet');

async function main() {
  const token = fs.readFileSync(process.env.D8_API_TOKEN_FILE, 'utf8').trim();
  const client = new RequestsClient({ url: process.env.D8_URL, token });
  const steps = JSON.parse(process.argv[2]);
  for (const s of steps) {
    const started = Date.now();
    try {
      let result;
      if (s.op === 'create') result = await client.create(s.input);
      else if (s.op === 'wait') result = await client.waitForDecision(s.id, { timeoutMs: s.timeoutMs });
      else if (s.op === 'get') result = await client.get(s.id);
      else if (s.op === 'list') result = await client.list(s.status);
      else if (s.op === 'spend') result = await client.spend(s.month);
      else if (s.op === 'decide') result = await client.decide(s.id, s.decision, s.note);
      else throw new Error(`unknown step ${s.op}`);
      process.stdout.write(JSON.stringify({ ok: true, ms: Date.now() - started, result }) + '\n');
    } catch (err) {
      if (!(err instanceof RequestsApiError)) throw err;
      process.stdout.write(JSON.stringify({ ok: false, ms: Date.now() - started, status: err.status, field: err.field, message: err.message }) + '\n');
    }
  }
}

main().catch((err) => {
  process.stderr.write(`caller failed: ${err && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});
