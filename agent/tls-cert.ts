/**
 * The agent's key pair and self-signed certificate, made on the host the agent runs on. Node makes
 * the ECDSA P-256 key but has no API to issue an X.509 certificate, and hosts without `openssl` are
 * real, so the certificate is encoded here: a v3 certificate with a random serial, subject = issuer,
 * no extensions (the master pins the fingerprint, so no name or CA is ever checked), signed with
 * ecdsa-with-SHA256. Node's X509Certificate parses the result before it is used.
 */
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { certFingerprint, TLS_FILES, type CertFingerprint } from '../core/agent-tls';

// --- DER: just the types a certificate needs -------------------------------------------------------
function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), len(body.length), body]);
const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 + n, inner);
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));

function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && b[i + 1] < 0x80) i++;
  const v = b.subarray(i);
  return tlv(0x02, v[0] >= 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out = [40 * arcs[0] + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const chunk = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

const ECDSA_WITH_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const COMMON_NAME = '2.5.4.3';
/** RFC 5280's "no well-defined expiration date": the pin, not a date, says whether to trust it. */
const NO_EXPIRY = new Date(Date.UTC(9999, 11, 31, 23, 59, 59));

export interface AgentCertificate {
  keyPem: string;
  certPem: string;
  fingerprint: CertFingerprint;
}

/** A new P-256 key and a self-signed certificate for it, named `commonName`. */
export function makeSelfSignedCertificate(commonName: string, now: Date = new Date()): AgentCertificate {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const serial = crypto.randomBytes(16);
  serial[0] &= 0x7f;
  const name = seq(set(seq(oid(COMMON_NAME), utf8(commonName.slice(0, 64)))));
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))),
    integer(serial),
    ECDSA_WITH_SHA256,
    name,
    seq(time(new Date(now.getTime() - 24 * 3600 * 1000)), time(NO_EXPIRY)),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const signature = crypto.sign('sha256', tbs, privateKey);
  const der = seq(tbs, ECDSA_WITH_SHA256, bitString(signature));
  const cert = new crypto.X509Certificate(der); // throws when the encoding is wrong
  if (!cert.verify(publicKey)) throw new Error('the new certificate does not verify with its own key');
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    certPem: cert.toString(),
    fingerprint: certFingerprint(cert.raw),
  };
}

function writeAtomic(file: string, data: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

/** The pair in `dir`, when both files are readable, match each other and parse; else why not. */
function readPair(dir: string): AgentCertificate | string {
  let keyPem: string;
  let certPem: string;
  try {
    keyPem = fs.readFileSync(path.join(dir, TLS_FILES.key), 'utf8');
    certPem = fs.readFileSync(path.join(dir, TLS_FILES.cert), 'utf8');
  } catch (err) {
    return `cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  try {
    const cert = new crypto.X509Certificate(certPem);
    if (!cert.checkPrivateKey(crypto.createPrivateKey(keyPem))) return 'the key does not match the certificate';
    return { keyPem, certPem, fingerprint: certFingerprint(cert.raw) };
  } catch (err) {
    return `it does not parse (${(err as Error).message})`;
  }
}

/**
 * The agent's key pair in `dir`: the one already there (kept across redeploys, so the master's pin
 * stays valid), else a new one. `made` says which, with the reason an existing pair was replaced.
 */
export function ensureAgentCertificate(dir: string, commonName: string): AgentCertificate & { made: null | string } {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hasAny = [TLS_FILES.key, TLS_FILES.cert].some((f) => fs.existsSync(path.join(dir, f)));
  const existing = hasAny ? readPair(dir) : 'none yet';
  if (typeof existing !== 'string') {
    writeAtomic(path.join(dir, TLS_FILES.fingerprint), `${existing.fingerprint}\n`, 0o644);
    return { ...existing, made: null };
  }
  const fresh = makeSelfSignedCertificate(commonName);
  writeAtomic(path.join(dir, TLS_FILES.key), fresh.keyPem, 0o600);
  writeAtomic(path.join(dir, TLS_FILES.cert), fresh.certPem, 0o644);
  writeAtomic(path.join(dir, TLS_FILES.fingerprint), `${fresh.fingerprint}\n`, 0o644);
  return { ...fresh, made: hasAny ? `the pair in ${dir} was unusable: ${existing}` : `no key pair in ${dir} yet` };
}
