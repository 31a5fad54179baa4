/**
 * The agent's TLS identity as both sides name it: the SHA-256 fingerprint of its certificate (DER),
 * written like node's `X509Certificate.fingerprint256` (`AB:CD:…`, 32 upper-case hex pairs), and
 * the files the agent keeps its key pair in (D8_TLS_DIR, on the host, key mode 0600).
 */
import crypto from 'crypto';
import { z } from 'zod';

export const CertFingerprintSchema = z.string().regex(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/, 'must be a SHA-256 certificate fingerprint (AB:CD:…, 32 upper-case hex pairs)');
export type CertFingerprint = z.infer<typeof CertFingerprintSchema>;

export const TLS_FILES = {
  key: 'agent-key.pem',
  cert: 'agent-cert.pem',
  /** The fingerprint on one line, for install.sh (which has no X.509 tools of its own). */
  fingerprint: 'agent-cert.sha256',
} as const;

export function certFingerprint(der: Buffer): CertFingerprint {
  return crypto.createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}
