/**
 * Issue 12: hostile traffic against one real agent, bounded to a few seconds. More than 10,000
 * requests over raw sockets (random bytes, broken framing, huge headers, deeply nested JSON, random
 * JSON bodies, wrong tokens, odd methods and paths) while ~200 slowloris sockets hold connections
 * open: the agent never crashes, never answers 5xx, never shows a stack trace, and /api/health
 * answers throughout. JSON nesting is capped before parsing (deep JSON once took the agent from
 * 76 to 178 MB). The agent's RSS peak is printed.
 */
import fs from 'fs';
import net from 'net';
import { LIMITS } from '../../core/protocol';
import { AgentHandle, alive, httpRequest, sleep, startAgent } from '../support/agent-process';
import { prng } from '../support/prng';

jest.setTimeout(120_000);

const TOTAL = 10_500;
const WORKERS = 48;
const SLOWLORIS = 200;


const STACK_TRACE = /\n\s+at [^\n]*:\d+:\d+|at [\w.<>]+ \((?:\/|node:)[^)]*:\d+:\d+\)/;

interface Tally { sent: number; statuses: Map<number, number>; fiveXX: string[]; traces: string[]; kinds: Map<string, number> }

function rssKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Writes `payload` on a fresh connection, half-closes, collects whatever comes back until close (bounded). */
function raw(port: number, payload: Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (): void => { clearTimeout(t); s.destroy(); resolve(Buffer.concat(chunks).toString('latin1')); };
    const t = setTimeout(done, timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', done);
    s.on('close', done);
    s.on('connect', () => s.end(payload));
  });
}

/** Mostly a few hundred to a few thousand levels; one in fifty as deep as the body limit allows. */
function deepJson(rand: () => number): string {
  const depth = rand() < 0.02 ? Math.floor(LIMITS.maxBodyBytes / 5) - 10 : 33 + Math.floor(rand() * 3000);
  return rand() < 0.5 ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

function randomJson(rand: () => number, depth = 0): unknown {
  const r = rand();
  if (depth > 4 || r < 0.3) return [null, true, 1e308, -0, 'x'.repeat(Math.floor(rand() * 50)), '\u0000\ud800'][Math.floor(rand() * 6)];
  if (r < 0.6) return Array.from({ length: Math.floor(rand() * 5) }, () => randomJson(rand, depth + 1));
  // Never a "command" key: a well-formed task must not run by accident.
  const keys = ['kind', 'method', 'timeout_s', 'working_dir', '__proto__', 'constructor', 'x'];
  return Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, () => [keys[Math.floor(rand() * keys.length)], randomJson(rand, depth + 1)]));
}

function hostile(i: number, rand: () => number, token: string): { kind: string; payload: Buffer } {
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
  const post = (body: string | Buffer, auth: string | null, extra = ''): Buffer => Buffer.concat([
    Buffer.from(`POST /api/execute HTTP/1.1\r\nHost: a\r\n${auth ? `Authorization: Bearer ${auth}\r\n` : ''}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n`),
    Buffer.isBuffer(body) ? body : Buffer.from(body),
  ]);
  switch (i % 10) {
    case 0: return { kind: 'random bytes', payload: bytes(1 + Math.floor(rand() * 2048)) };
    case 1: return { kind: 'request line + random bytes', payload: Buffer.concat([Buffer.from(['GET /api/health HTTP/1.1\r\n', 'POST /api/execute HTTP/1.1\r\n', 'PUT / HTTP/1.0\r\n'][i % 3]), bytes(Math.floor(rand() * 1024))]) };
    case 2: {
      const framing = [
        'POST /api/execute HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n0\r\n\r\n',
        'POST /api/execute HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        'POST /api/execute HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n',
        'POST /api/execute HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n{}',
        'POST /api/execute HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n{}',
        `POST /api/execute HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nContent-Length: 100\r\n\r\n{"kind":`,
        'GET /api/health HTTP/1.1\r\nHost a\r\n\r\n',
        'GET /api/health HTTP/1.1\nHost: a\n\n',
        'GET /api/health HTTP/1.1\r\nHo\u0000st: a\r\n\r\n',
        'GET /api/health\r\n\r\n',
        'GET /api/health HTTP/9.9\r\n\r\n',
        `GET /${'a'.repeat(10_000)} HTTP/1.1\r\nHost: a\r\n\r\n`,
        'BREW /api/health HTTP/1.1\r\nHost: a\r\n\r\n',
        'DELETE /api/execute HTTP/1.1\r\nHost: a\r\n\r\n',
        `POST /api/execute HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding: chunked\r\n\r\n${'ffffffff\r\n'}`,
        'GET /api/health?%%%%%%=%ZZ HTTP/1.1\r\nHost: a\r\n\r\n',
        'GET /../../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n',
      ];
      return { kind: 'broken framing', payload: Buffer.from(framing[Math.floor(rand() * framing.length)], 'latin1') };
    }
    case 3: {
      // Beyond node's 16 KiB header limit; one in twenty far beyond it.
      const big = rand() < 0.05 ? 100_000 : 17_000 + Math.floor(rand() * 8000);
      return { kind: 'huge headers', payload: Buffer.from(`GET /api/health HTTP/1.1\r\nHost: a\r\nX-Big: ${'h'.repeat(big)}\r\n\r\n`) };
    }
    case 4:
    case 5: return { kind: 'deep JSON (valid token)', payload: post(deepJson(rand), token) };
    case 6: return { kind: 'random JSON (valid token)', payload: post(JSON.stringify(randomJson(rand)) ?? 'null', token) };
    case 7: return { kind: 'random bytes body (valid token)', payload: post(bytes(Math.floor(rand() * 4096)), token) };
    case 8: return { kind: 'wrong or no token', payload: post('{"command":"id","kind":"shell"}', rand() < 0.5 ? null : `wrong-${i}-${'x'.repeat(Math.floor(rand() * 64))}`) };
    default: {
      // Declared beyond the limit (refused up front) and mostly cut short; one in twenty sent whole.
      const size = LIMITS.maxBodyBytes + 1 + Math.floor(rand() * 1000);
      const body = Buffer.alloc(size, 0x5b);
      const payload = post(body, token);
      return { kind: 'oversized body', payload: rand() < 0.05 ? payload : payload.subarray(0, payload.length - size + 1024) };
    }
  }
}

function tallyAnswer(t: Tally, kind: string, answer: string): void {
  t.sent++;
  t.kinds.set(kind, (t.kinds.get(kind) ?? 0) + 1);
  for (const m of answer.matchAll(/HTTP\/1\.[01] (\d{3})/g)) {
    const status = Number(m[1]);
    t.statuses.set(status, (t.statuses.get(status) ?? 0) + 1);
    if (status >= 500 && t.fiveXX.length < 5) t.fiveXX.push(`${kind}: ${answer.slice(0, 300)}`);
  }
  if (STACK_TRACE.test(answer) && t.traces.length < 5) t.traces.push(`${kind}: ${answer.slice(0, 600)}`);
}

function slowloris(port: number, n: number): { sockets: net.Socket[]; stop: () => void } {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    s.on('connect', () => s.write(i % 2 ? 'GET /api/health HTTP/1.1\r\nHost: a\r\n' : 'POST /api/execute HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n{'));
    sockets.push(s);
  }
  const drip = setInterval(() => { for (const s of sockets) if (!s.destroyed) s.write(s.bytesWritten % 2 ? 'X-a: b\r\n' : ' '); }, 500);
  return { sockets, stop: () => { clearInterval(drip); for (const s of sockets) s.destroy(); } };
}

describe('agent under hostile traffic (bounded fuzz)', () => {
  let agent: AgentHandle;
  beforeAll(async () => {
    agent = await startAgent({ env: { D8_LOG_LEVEL: 'warn' } });
  });
  afterAll(async () => {
    await agent?.stop();
  });

  it(`${TOTAL} hostile requests and ${SLOWLORIS} slowloris sockets: no crash, no 5xx, no stack trace, health throughout`, async () => {
    const pid = agent.pid;
    const rssBefore = rssKb(pid, 'VmRSS');
    let rssPeak = rssBefore;
    const sampler = setInterval(() => { try { rssPeak = Math.max(rssPeak, rssKb(pid, 'VmRSS')); } catch { /* gone: asserted below */ } }, 20);

    const health: Array<{ ok: boolean; ms: number; err?: string }> = [];
    let fuzzing = true;
    const monitor = (async () => {
      while (fuzzing) {
        const t0 = Date.now();
        try {
          const r = await httpRequest({ port: agent.port, method: 'GET', path: '/api/health', timeoutMs: 2000 });
          health.push({ ok: r.status === 200 && r.body?.status === 'ok', ms: Date.now() - t0 });
        } catch (err) {
          health.push({ ok: false, ms: Date.now() - t0, err: (err as Error).message });
        }
        await sleep(25);
      }
    })();

    const loris = slowloris(agent.port, SLOWLORIS);
    const tally: Tally = { sent: 0, statuses: new Map(), fiveXX: [], traces: [], kinds: new Map() };
    const started = Date.now();
    let next = 0;
    await Promise.all(Array.from({ length: WORKERS }, async (_w, w) => {
      const rand = prng(0xd8 + w);
      for (let i = next++; i < TOTAL; i = next++) {
        const { kind, payload } = hostile(i, rand, agent.token);
        tallyAnswer(tally, kind, await raw(agent.port, payload));
      }
    }));
    const seconds = (Date.now() - started) / 1000;
    const lorisOpen = loris.sockets.filter((s) => !s.destroyed).length;
    fuzzing = false;
    await monitor;
    loris.stop();
    clearInterval(sampler);
    const rssHwm = rssKb(pid, 'VmHWM');

    const byStatus = [...tally.statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(' ');
    const healthMax = Math.max(...health.map((h) => h.ms));
    // eslint-disable-next-line no-console
    console.log([
      `fuzz: ${tally.sent} requests in ${seconds.toFixed(1)} s (${Math.round(tally.sent / seconds)}/s), ${lorisOpen}/${SLOWLORIS} slowloris sockets still open at the end`,
      `  by kind: ${[...tally.kinds.entries()].map(([k, n]) => `${k} ${n}`).join(', ')}`,
      `  answers by status: ${byStatus}`,
      `  health: ${health.length} checks, ${health.filter((h) => !h.ok).length} failed, slowest ${healthMax} ms`,
      `  agent RSS: ${(rssBefore / 1024).toFixed(0)} MB before, peak ${(rssPeak / 1024).toFixed(0)} MB sampled, ${(rssHwm / 1024).toFixed(0)} MB high-water mark (VmHWM)`,
    ].join('\n'));

    expect(tally.sent).toBeGreaterThanOrEqual(10_000);
    expect(alive(pid)).toBe(true);
    expect(agent.child.exitCode).toBeNull();
    expect(tally.fiveXX).toEqual([]);
    expect(tally.traces).toEqual([]);
    expect(health.length).toBeGreaterThan(10);
    expect(health.filter((h) => !h.ok)).toEqual([]);
    // Every kind got answers the agent chose (4xx), not only dropped connections.
    expect([...tally.statuses.keys()].filter((s) => s >= 400 && s < 500).length).toBeGreaterThanOrEqual(4);
    expect(agent.output()).not.toMatch(/uncaught|unhandled/i);

    // Still fully working afterwards (the valid token is never locked out by the wrong ones).
    expect((await agent.request('GET', '/api/health')).status).toBe(200);
    const ok = await agent.execute({ command: 'echo ok', kind: 'shell', method: 'native' });
    expect(ok.status).toBe(200);
    expect(ok.body.output).toBe('ok\n');
  });

  it(`JSON nested deeper than ${LIMITS.maxJsonDepth} levels is refused before it is parsed; shallower is parsed`, async () => {
    const at = (d: number) => '['.repeat(d) + ']'.repeat(d);
    const deep = await agent.execute(at(LIMITS.maxJsonDepth + 1));
    expect(deep.status).toBe(400);
    expect(deep.body.error).toBe(`request body nests JSON deeper than ${LIMITS.maxJsonDepth} levels`);
    const objects = await agent.execute(`{"command":${'{"a":'.repeat(LIMITS.maxJsonDepth)}1${'}'.repeat(LIMITS.maxJsonDepth)},"kind":"shell"}`);
    expect(objects.status).toBe(400);
    expect(objects.body.error).toMatch(/deeper than/);
    // Brackets inside strings are text, not nesting.
    const inString = await agent.execute({ command: `echo '${'['.repeat(200)}'`, kind: 'shell', method: 'native' });
    expect(inString.status).toBe(200);
    expect(inString.body.output).toBe(`${'['.repeat(200)}\n`);
    // At the limit it is parsed (and then refused by the schema, naming the shape it wants).
    const limit = await agent.execute(at(LIMITS.maxJsonDepth));
    expect(limit.status).toBe(400);
    expect(limit.body.error).toBe('request body must be a JSON object');
  });

  it('a flood of maximal deep JSON bodies does not grow the agent', async () => {
    const pid = agent.pid;
    const before = rssKb(pid, 'VmRSS');
    let peak = before;
    const body = '['.repeat(LIMITS.maxBodyBytes / 2 - 1) + ']'.repeat(LIMITS.maxBodyBytes / 2 - 1);
    let next = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next++ < 400) {
        const r = await agent.execute(body);
        expect(r.status).toBe(400);
        peak = Math.max(peak, rssKb(pid, 'VmRSS'));
      }
    }));
    // eslint-disable-next-line no-console
    console.log(`deep JSON flood: 400 bodies of ${LIMITS.maxBodyBytes / 2 - 1} levels, agent RSS ${(before / 1024).toFixed(0)} -> peak ${(peak / 1024).toFixed(0)} MB`);
    // Measured alone on a fresh agent: +39 MB with the cap (buffers, warm-up), +117 MB without it (parsing).
    expect(peak - before).toBeLessThan(64 * 1024);
  });
});
