/**
 * The agent speaks TLS, pinned by the master (issue 13), with a real `d8 master` daemon, the real
 * `d8 exec`, real agents and real sockets:
 * - capture: a TCP proxy between master and agent records every byte: over the pinned HTTPS agent the
 *   token and the command never appear; the same proxy in front of a plain-HTTP agent (installed
 *   before TLS: no pin recorded) shows both, which proves the capture sees what crosses;
 * - upgrade: that slave without a recorded fingerprint keeps being checked (and commanded) over HTTP;
 * - man in the middle: a server with another certificate on a slave's address: the slave becomes
 *   `untrusted` (never pending or dead), one agent_impersonation alert naming both fingerprints,
 *   no request at all reaches it (no check, no command, no token, no restart).
 */
import https from 'https';
import net from 'net';
import path from 'path';
import { Fleet, freePort, sleep, waitFor } from './master-support/fleet';
import { SlaveTokens } from '../../core/slave-tokens';
import { makeSelfSignedCertificate } from '../../agent/tls-cert';
import { AgentClient } from '../../master/agent-client';
import { makeTempDir, startAgent } from '../support/agent-process';

jest.setTimeout(180_000);

/** A TCP proxy on `port` that records every byte in both directions. */
async function captureProxy(port: number, target: number): Promise<{ port: number; bytes: () => Buffer; connections: () => number; close: () => void }> {
  const chunks: Buffer[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) { sockets.add(s); s.on('error', () => undefined); s.on('close', () => sockets.delete(s)); }
    client.on('data', (d: Buffer) => { chunks.push(Buffer.from(d)); upstream.write(d); });
    upstream.on('data', (d: Buffer) => { chunks.push(Buffer.from(d)); client.write(d); });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port, bytes: () => Buffer.concat(chunks), connections: () => connections,
    close: () => { for (const s of sockets) s.destroy(); server.close(); },
  };
}

describe('master <-> agent over pinned TLS', () => {
  const fleet = new Fleet();
  const ports: Record<string, number> = {};
  const tokens: Record<string, string> = {};
  const marker = `d8-capture-${Date.now()}-marker`;
  let tlsProxy: Awaited<ReturnType<typeof captureProxy>>;
  let plainProxy: Awaited<ReturnType<typeof captureProxy>>;
  let tlsFingerprint: string;
  const mitmRequests: string[] = [];
  let mitmHandshakes = 0;
  let mitm: https.Server;
  const impostor = makeSelfSignedCertificate('d8-agent impostor');
  let daemon: ReturnType<Fleet['daemon']>;

  beforeAll(async () => {
    for (const s of ['tls', 'legacy', 'mitm', 'tlsAgent', 'legacyAgent']) ports[s] = await freePort();
    fleet.initRepo([{ name: 'tls', port: ports.tls }, { name: 'legacy', port: ports.legacy }, { name: 'mitm', port: ports.mitm }]);
    // Each slave's own token, as a deploy would have made it (the fleet token is not used).
    const st = SlaveTokens.forEnv('test', fleet.env());
    for (const s of ['tls', 'legacy', 'mitm']) { tokens[s] = st.forDeploy(s); st.markInstalled(s, tokens[s]); }
    const tlsAgent = await fleet.agent('tls', ports.tlsAgent, fleet.commits.main, { D8_AGENT_TOKEN: tokens.tls, D8_TLS_DIR: path.join(fleet.root, 'tls-dir') });
    await fleet.agent('legacy', ports.legacyAgent, fleet.commits.main, { D8_AGENT_TOKEN: tokens.legacy });
    expect(tlsAgent.tlsFingerprint).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
    tlsFingerprint = tlsAgent.tlsFingerprint!;
    // The slaves' addresses in the stack are the capture proxies, which forward to the agents.
    tlsProxy = await captureProxy(ports.tls, ports.tlsAgent);
    plainProxy = await captureProxy(ports.legacy, ports.legacyAgent);
    // The impostor: TLS on mitm's address with another certificate; counts every handshake and request.
    mitm = https.createServer({ key: impostor.keyPem, cert: impostor.certPem }, (req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => { mitmRequests.push(`${req.method} ${req.url} ${JSON.stringify(req.headers)} ${body}`); res.end('{}'); });
    });
    mitm.on('connection', () => mitmHandshakes++);
    await new Promise<void>((r) => mitm.listen(ports.mitm, '127.0.0.1', r));
    // What the installs of tls and mitm reported over SSH: their agents' certificate (mitm's is the real agent's).
    fleet.db().pins.set('test', 'tls', tlsFingerprint);
    fleet.db().pins.set('test', 'mitm', tlsFingerprint);
    daemon = fleet.daemon({ tuning: { deadAfter: 2 } });
  });

  afterAll(async () => {
    tlsProxy?.close();
    plainProxy?.close();
    mitm?.close();
    await fleet.cleanup();
  });

  it('checks the pinned agent over HTTPS and the legacy one (no fingerprint recorded) over HTTP', async () => {
    await waitFor(() => fleet.slave('tls')?.state === 'healthy' && fleet.slave('legacy')?.state === 'healthy', 60_000, 'tls and legacy healthy');
    await waitFor(() => fleet.db().slaves.history('test', 'legacy', 10).filter((c) => c.ok).length >= 3, 30_000, 'three checks of legacy');
    expect(fleet.db().pins.get('test', 'legacy')).toBeNull();
    // The legacy agent got plain HTTP requests; the TLS agent's traffic starts with a TLS handshake record.
    expect(plainProxy.bytes().toString('latin1')).toContain('GET /api/health HTTP/1.1');
    const tlsBytes = tlsProxy.bytes();
    expect(tlsBytes[0]).toBe(0x16);
    expect(tlsBytes.toString('latin1')).not.toContain('/api/health');
  });

  it('capture: the token and the command never cross in clear to the TLS agent; to the plain one they do', async () => {
    const r1 = await fleet.cli(['exec', 'tls', '--stack', 'test', '--repo', fleet.repo, '--', 'echo', marker]);
    expect(r1.code).toBe(0);
    expect(r1.stdout).toContain(marker);
    const r2 = await fleet.cli(['exec', 'legacy', '--stack', 'test', '--repo', fleet.repo, '--', 'echo', marker]);
    expect(r2.stdout).toContain(marker);
    const tlsText = tlsProxy.bytes().toString('latin1');
    expect(tlsText).not.toContain(tokens.tls);
    expect(tlsText).not.toContain(marker);
    expect(tlsText).not.toContain('Bearer');
    expect(tlsText).not.toContain('/api/execute');
    // The control: the same capture in front of the plain-HTTP agent sees both.
    const plainText = plainProxy.bytes().toString('latin1');
    expect(plainText).toContain(`Bearer ${tokens.legacy}`);
    expect(plainText).toContain(marker);
  });

  it('man in the middle: untrusted, never dead, one alert with both fingerprints, nothing sent to it', async () => {
    await waitFor(() => fleet.slave('mitm')?.state === 'untrusted', 30_000, 'mitm untrusted');
    const checksAt = fleet.db().slaves.history('test', 'mitm', 200).length;
    await waitFor(() => fleet.db().slaves.history('test', 'mitm', 200).length >= checksAt + 5, 30_000, 'five more checks of mitm');
    const rec = fleet.slave('mitm')!;
    expect(rec.state).toBe('untrusted');
    expect(rec.failures).toBe(0);
    expect(rec.breaker).toBe('closed');
    expect(rec.last_error).toContain(impostor.fingerprint);
    const alerts = fleet.alerts('mitm');
    expect(alerts.map((a) => a.kind)).toEqual(['agent_impersonation']);
    expect(alerts[0].data).toMatchObject({ endpoint: `127.0.0.1:${ports.mitm}`, expected: tlsFingerprint, presented: impostor.fingerprint });
    // A command is refused before anything is sent (the slave is not healthy).
    const r = await fleet.cli(['exec', 'mitm', '--stack', 'test', '--repo', fleet.repo, '--', 'echo', marker]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/untrusted/);
    await sleep(2000);
    // The checks connected (and saw its certificate), but not one request reached the impostor.
    expect(mitmHandshakes).toBeGreaterThan(5);
    expect(mitmRequests).toEqual([]);
    // Still only one alert after all those checks, and no recovery was tried.
    expect(fleet.alerts('mitm').map((a) => a.kind)).toEqual(['agent_impersonation']);
    expect(fleet.slave('mitm')!.recovery_attempts).toBe(0);
    expect(daemon.log()).not.toContain(tokens.mitm);
    expect(daemon.log().split('\n').filter((l) => l.includes('"slave":"mitm"') && !l.includes('"alert":') && /restart|redeploy|recover/.test(l))).toEqual([]);
  });
});

describe('the agent client\'s pooled HTTPS connections', () => {
  it('a kept-alive connection checked against one pin never serves a request expecting another', async () => {
    const agent = await startAgent({ env: { D8_TLS_DIR: path.join(makeTempDir('d8-tls-pool-'), 'tls') } });
    const client = new AgentClient({ attempts: 1 });
    try {
      const target = { agentHost: '127.0.0.1', agentPort: agent.port };
      const good = await client.health({ ...target, tlsFingerprint: agent.tlsFingerprint });
      expect(good.ok).toBe(true);
      const other = makeSelfSignedCertificate('another').fingerprint;
      const bad = await client.health({ ...target, tlsFingerprint: other });
      expect(!bad.ok && bad.pinMismatch).toEqual({ address: `127.0.0.1:${agent.port}`, expected: other, presented: agent.tlsFingerprint });
      // And the right pin still gets its (pooled) connection.
      expect((await client.health({ ...target, tlsFingerprint: agent.tlsFingerprint })).ok).toBe(true);
    } finally {
      client.close();
      await agent.stop();
    }
  });
});
