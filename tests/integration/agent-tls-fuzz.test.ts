/**
 * Issue 13: the agent's TLS listener under hostile traffic. At least 10,000 malformed handshakes and
 * requests over raw sockets against one real agent serving HTTPS: random bytes, real ClientHellos
 * truncated or with bytes flipped, TLS records with random bodies, and complete handshakes followed
 * by garbage where the HTTP request should be. The agent never exits, never answers 5xx, and answers
 * /api/health over HTTPS (with its own certificate) during and after.
 */
import net from 'net';
import path from 'path';
import tls from 'tls';
import { alive, httpRequest, makeTempDir, startAgent, type AgentHandle } from '../support/agent-process';
import { prng } from '../support/prng';

jest.setTimeout(180_000);

const TOTAL = 10_200;
const WORKERS = 32;

/** A real ClientHello, as node's TLS client sends it (captured by a plain TCP server). */
function captureClientHello(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => {
      s.once('data', (d: Buffer) => { resolve(Buffer.from(d)); s.destroy(); server.close(); });
    });
    server.listen(0, '127.0.0.1', () => {
      const c = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, rejectUnauthorized: false, servername: 'agent' });
      c.on('error', () => undefined);
    });
    server.on('error', reject);
  });
}

/** Writes `data` on a fresh TCP connection, waits for the agent to answer or close (bounded), and closes. */
function rawShot(port: number, data: Buffer, waitMs: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    const done = (): void => { clearTimeout(t); s.destroy(); resolve(Buffer.concat(got)); };
    const t = setTimeout(done, waitMs);
    s.on('connect', () => s.write(data));
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', done);
    s.on('close', done);
  });
}

/** A full TLS handshake, then `garbage` where the HTTP request belongs; resolves with what came back in clear. */
function tlsShot(port: number, garbage: Buffer, waitMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    let got = '';
    const done = (): void => { clearTimeout(t); s.destroy(); resolve(got); };
    const t = setTimeout(done, waitMs);
    s.on('secureConnect', () => s.end(garbage));
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', done);
    s.on('close', done);
  });
}

describe('the TLS listener under malformed handshakes and requests', () => {
  let agent: AgentHandle;

  beforeAll(async () => {
    agent = await startAgent({ env: { D8_TLS_DIR: path.join(makeTempDir('d8-tls-fuzz-'), 'tls'), D8_LOG_LEVEL: 'warn' } });
    expect(agent.scheme).toBe('https');
  });

  afterAll(async () => {
    await agent?.stop();
  });

  it(`survives ${TOTAL} of them and answers health over HTTPS throughout and after`, async () => {
    const hello = await captureClientHello();
    expect(hello[0]).toBe(0x16); // a handshake record
    const rnd = prng(13);
    const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
    const kinds = new Map<string, number>();
    const fiveXX: string[] = [];
    let next = 0;
    let healthDuring = 0;
    const one = async (i: number): Promise<void> => {
      const k = i % 5;
      let kind: string;
      if (k === 0) {
        kind = 'random bytes';
        await rawShot(agent.port, bytes(1 + Math.floor(rnd() * 1500)), 300);
      } else if (k === 1) {
        kind = 'truncated ClientHello';
        await rawShot(agent.port, hello.subarray(0, 1 + Math.floor(rnd() * (hello.length - 1))), 150);
      } else if (k === 2) {
        kind = 'ClientHello with flipped bytes';
        const h = Buffer.from(hello);
        for (let f = 0; f < 1 + Math.floor(rnd() * 8); f++) h[Math.floor(rnd() * h.length)] ^= 1 + Math.floor(rnd() * 255);
        await rawShot(agent.port, h, 300);
      } else if (k === 3) {
        kind = 'TLS record header, random body';
        const body = bytes(Math.floor(rnd() * 600));
        const type = [0x14, 0x15, 0x16, 0x17, 0x18][Math.floor(rnd() * 5)];
        await rawShot(agent.port, Buffer.concat([Buffer.from([type, 0x03, Math.floor(rnd() * 5), body.length >> 8, body.length & 0xff]), body]), 300);
      } else {
        kind = 'handshake, then garbage HTTP';
        const variants = [
          bytes(1 + Math.floor(rnd() * 800)),
          Buffer.from(`GET /${bytes(20).toString('hex')} HTTP/9.9\r\n\r\n`),
          Buffer.from(`POST /api/execute HTTP/1.1\r\nContent-Length: -${Math.floor(rnd() * 100)}\r\n\r\n{`),
          Buffer.from(`${'A'.repeat(Math.floor(rnd() * 9000))}\r\n\r\n`),
          Buffer.from('GET /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n'),
        ];
        const answer = await tlsShot(agent.port, variants[i % variants.length], 1500);
        const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1];
        if (status && status.startsWith('5')) fiveXX.push(`${status}: ${answer.slice(0, 200)}`);
      }
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      if (i % 1000 === 0) {
        const h = await httpRequest({ port: agent.port, method: 'GET', path: '/api/health', scheme: 'https', timeoutMs: 5000 });
        if (h.status === 200) healthDuring++;
      }
    };
    const worker = async (): Promise<void> => {
      for (let i = next++; i < TOTAL; i = next++) await one(i);
    };
    const t0 = Date.now();
    await Promise.all(Array.from({ length: WORKERS }, worker));
    process.stdout.write(`TLS fuzz: ${TOTAL} connections in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(Object.fromEntries(kinds))}\n`);

    expect([...kinds.values()].reduce((a, b) => a + b, 0)).toBe(TOTAL);
    expect(healthDuring).toBe(Math.ceil(TOTAL / 1000));
    expect(fiveXX).toEqual([]);
    expect(alive(agent.pid)).toBe(true);
    const after = await httpRequest({ port: agent.port, method: 'GET', path: '/api/health', scheme: 'https', timeoutMs: 5000 });
    expect(after.status).toBe(200);
    expect(after.body.status).toBe('ok');
    // Plain HTTP on the TLS port is refused, not served.
    await expect(httpRequest({ port: agent.port, method: 'GET', path: '/api/health', scheme: 'http', timeoutMs: 3000 })).rejects.toThrow();
  });
});
