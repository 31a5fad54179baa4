/**
 * The agent's certificate (agent/tls-cert.ts): node's own X509Certificate parses and verifies what
 * the DER encoder wrote, a real TLS handshake presents it, the pair is kept across starts, an
 * unusable pair is replaced; the state machine's untrusted state and its once-per-episode alert;
 * the store's pins and how a deploy result moves them.
 */
import crypto from 'crypto';
import fs from 'fs';
import https from 'https';
import os from 'os';
import path from 'path';
import type { AddressInfo } from 'net';
import { certFingerprint, CertFingerprintSchema, TLS_FILES } from '../../core/agent-tls';
import { InstallResultSchema } from '../../core/install-result';
import { ensureAgentCertificate, makeSelfSignedCertificate } from '../../agent/tls-cert';
import { alertFor, nextState } from '../../master/checker/state-machine';
import { openStore } from '../../master/store';
import { adoptRecordedPins } from '../../master/deploy/adopt-pins';
import type { Deployer } from '../../master/deploy/deployer';
import { createLogger } from '../../core/logger';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'd8-tls-unit-'));

describe('the agent certificate', () => {
  it('is a v3 ECDSA P-256 self-signed certificate node parses, verifies with its own key, and serves in a TLS handshake', async () => {
    const c = makeSelfSignedCertificate('d8-agent host-a');
    const x = new crypto.X509Certificate(c.certPem);
    expect(x.subject).toBe('CN=d8-agent host-a');
    expect(x.issuer).toBe(x.subject);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.publicKey.asymmetricKeyType).toBe('ec');
    expect(x.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(x.checkPrivateKey(crypto.createPrivateKey(c.keyPem))).toBe(true);
    expect(Date.parse(x.validTo)).toBeGreaterThan(Date.parse('9999-01-01'));
    expect(CertFingerprintSchema.parse(c.fingerprint)).toBe(x.fingerprint256);
    expect(certFingerprint(x.raw)).toBe(x.fingerprint256);
    expect(makeSelfSignedCertificate('d8-agent host-a').fingerprint).not.toBe(c.fingerprint);

    const server = https.createServer({ key: c.keyPem, cert: c.certPem }, (_q, r) => r.end('hello'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const presented = await new Promise<string>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, rejectUnauthorized: false }, (res) => {
          const fp = (res.socket as import('tls').TLSSocket).getPeerCertificate().fingerprint256;
          res.resume();
          res.on('end', () => resolve(fp));
        }).on('error', reject);
      });
      expect(presented).toBe(c.fingerprint);
    } finally {
      server.close();
    }
  });

  it('is made once per directory (key 0600) and kept on the next start; an unusable pair is replaced and said why', () => {
    const dir = path.join(tmp(), 'tls-7600');
    const first = ensureAgentCertificate(dir, 'd8-agent x');
    expect(first.made).toMatch(/no key pair/);
    expect(fs.statSync(path.join(dir, TLS_FILES.key)).mode & 0o777).toBe(0o600);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(path.join(dir, TLS_FILES.fingerprint), 'utf8').trim()).toBe(first.fingerprint);
    const again = ensureAgentCertificate(dir, 'd8-agent x');
    expect(again.made).toBeNull();
    expect(again.fingerprint).toBe(first.fingerprint);
    // Another pair's key beside this certificate: unusable, replaced.
    fs.writeFileSync(path.join(dir, TLS_FILES.key), makeSelfSignedCertificate('other').keyPem);
    const replaced = ensureAgentCertificate(dir, 'd8-agent x');
    expect(replaced.made).toMatch(/does not match/);
    expect(replaced.fingerprint).not.toBe(first.fingerprint);
    fs.writeFileSync(path.join(dir, TLS_FILES.cert), 'garbage');
    expect(ensureAgentCertificate(dir, 'd8-agent x').made).toMatch(/does not parse/);
  });

  it('the install result carries the fingerprint optionally: an older result still parses, a malformed one is refused', () => {
    const base = { ok: true, strategy: 'venv', attempts: [] };
    expect(InstallResultSchema.parse(base).tls_fingerprint).toBeUndefined();
    const fp = makeSelfSignedCertificate('x').fingerprint;
    expect(InstallResultSchema.parse({ ...base, tls_fingerprint: fp }).tls_fingerprint).toBe(fp);
    expect(InstallResultSchema.safeParse({ ...base, tls_fingerprint: 'ab:cd' }).success).toBe(false);
  });
});

describe('a certificate mismatch in the state machine', () => {
  const opts = { deadAfter: 2 };
  it('is untrusted, never pending or dead, and keeps the failure count', () => {
    let s = nextState({ state: 'healthy', failures: 0 }, { ok: false, error: 'x', untrusted: true }, opts);
    for (let i = 0; i < 5; i++) s = nextState(s, { ok: false, error: 'x', untrusted: true }, opts);
    expect(s).toEqual({ state: 'untrusted', failures: 0 });
    expect(nextState(s, { ok: true, commit: 'c', drift: 'equal' }, opts).state).toBe('healthy');
  });

  it('alerts once per episode (again only for another presented certificate), and recovery is told', () => {
    const now = 1_000_000;
    expect(alertFor('untrusted', 'A>B', { alertKind: null, alertAt: null }, now, 60_000)).toEqual({ kind: 'agent_impersonation', resend: false });
    expect(alertFor('untrusted', 'A>B', { alertKind: 'agent_impersonation', alertAt: now, alertKey: 'A>B' }, now + 10 * 3600_000, 60_000)).toBeNull();
    expect(alertFor('untrusted', 'A>C', { alertKind: 'agent_impersonation', alertAt: now, alertKey: 'A>B' }, now + 1, 60_000)).toEqual({ kind: 'agent_impersonation', resend: false });
    expect(alertFor('healthy', null, { alertKind: 'agent_impersonation', alertAt: now, alertKey: 'A>B' }, now + 1, 60_000)).toEqual({ kind: 'slave_recovered', resend: false });
  });
});

describe('agent pins in the store', () => {
  it('a deploy that reports a fingerprint pins it, one reporting plain HTTP drops it, one that did not learn it keeps it', () => {
    const store = openStore(path.join(tmp(), 'state.db'));
    try {
      const fp = makeSelfSignedCertificate('x').fingerprint;
      const result = (extra: object) => ({
        slave: 'pc', engine: 'direct' as const, status: 'deployed' as const, ok: true, strategy: 'venv' as const, attempts: [], commit: null,
        buildLogPath: null, error: null, errorKind: null, durationMs: 1, ...extra,
      });
      const id1 = store.deploys.start('prod', 'pc', 'direct', 'manual');
      store.deploys.finish(id1, result({ tlsFingerprint: fp }));
      expect(store.pins.get('prod', 'pc')).toBe(fp);
      expect(store.pins.lookup('prod')('pc')).toBe(fp);
      expect(store.pins.get('dev', 'pc')).toBeNull();
      const id2 = store.deploys.start('prod', 'pc', 'direct', 'manual');
      store.deploys.finish(id2, result({ status: 'up_to_date' }));
      expect(store.pins.get('prod', 'pc')).toBe(fp);
      const id3 = store.deploys.start('prod', 'pc', 'direct', 'manual');
      store.deploys.finish(id3, result({ tlsFingerprint: null }));
      expect(store.pins.get('prod', 'pc')).toBeNull();
    } finally {
      store.close();
    }
  });
});

describe('pins the deploy engine recorded, adopted at master start', () => {
  const quiet = createLogger({ name: 'test', level: 'silent' });
  const engine = (recorded: (slaves: readonly string[]) => Promise<Record<string, string>>): Deployer => ({
    engine: 'pulumi',
    deploy: () => Promise.reject(new Error('not called')),
    recordedPins: recorded,
  });

  it('fills in only the slaves the store has no pin for, and never replaces one it has', async () => {
    const store = openStore(path.join(tmp(), 'state.db'));
    try {
      const [kept, fresh, other] = ['a', 'b', 'c'].map((n) => makeSelfSignedCertificate(n).fingerprint);
      store.pins.set('prod', 'pc', kept);
      const asked: string[][] = [];
      const adopted = await adoptRecordedPins(engine(async (slaves) => { asked.push([...slaves]); return { pc: other, laptop: fresh }; }), store.pins, 'prod', ['pc', 'laptop'], quiet);
      expect(adopted).toEqual(['laptop']);
      expect(asked).toEqual([['laptop']]); // only the slave without a pin is asked for
      expect(store.pins.get('prod', 'pc')).toBe(kept);
      expect(store.pins.get('prod', 'laptop')).toBe(fresh);
      // Every slave pinned: the engine is not asked at all (a stack read, or a swarm task's logs per slave).
      await expect(adoptRecordedPins(engine(async (slaves) => { asked.push([...slaves]); return {}; }), store.pins, 'prod', ['pc', 'laptop'], quiet)).resolves.toEqual([]);
      expect(asked).toHaveLength(1);
    } finally {
      store.close();
    }
  });

  it('an engine record it cannot read changes nothing and does not throw; a deployer with no record is skipped', async () => {
    const store = openStore(path.join(tmp(), 'state.db'));
    try {
      await expect(adoptRecordedPins(engine(() => Promise.reject(new Error('no backend'))), store.pins, 'prod', ['pc'], quiet)).resolves.toEqual([]);
      await expect(adoptRecordedPins({ engine: 'direct', deploy: () => Promise.reject(new Error('not called')) }, store.pins, 'prod', ['pc'], quiet)).resolves.toEqual([]);
      expect(store.pins.list('prod')).toEqual([]);
    } finally {
      store.close();
    }
  });
});
