/**
 * A slave's SSH host key as the stack config gives it (`hostKey`): a known_hosts or `ssh-keyscan`
 * line (`HOST ssh-ed25519 AAAA… [comment]`) or the key alone (`ssh-ed25519 AAAA…`). Both engines
 * read it here: the direct deployer compares the server's key with `blob`, the Pulumi program hands
 * `authorizedKey` to the command provider (which wants the authorized_keys form).
 */
import crypto from 'crypto';

const KEY_TYPE = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)$/;
const BASE64 = /^[A-Za-z0-9+/]+=*$/;

export interface HostKey {
  /** e.g. `ssh-ed25519`. */
  type: string;
  /** The key in SSH wire format (what the server offers). */
  blob: Buffer;
  /** `type base64`: the authorized_keys form. */
  authorizedKey: string;
  /** `SHA256:…`, as `ssh-keygen -lf` and ssh's own messages print it. */
  fingerprint: string;
}

export type HostKeyProblem = 'line-count' | 'not-a-key';

export class HostKeyFormatError extends Error {
  constructor(message: string, readonly problem: HostKeyProblem) {
    super(message);
    this.name = 'HostKeyFormatError';
  }
}

/** OpenSSH's SHA256 fingerprint of a key in wire format. */
export function hostKeyFingerprint(blob: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type a wire-format blob declares (its first string), or null when it is not one. */
function blobType(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const len = blob.readUInt32BE(0);
  if (len < 1 || len > 64 || blob.length < 4 + len) return null;
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** Parses one host key line; throws HostKeyFormatError saying what is wrong with it. */
export function parseHostKey(raw: string): HostKey {
  const lines = raw.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length !== 1) {
    throw new HostKeyFormatError(`must be exactly one public host key line (got ${lines.length}); e.g. the output of \`ssh-keyscan -t ed25519 <host>\``, 'line-count');
  }
  const fields = lines[0].split(/\s+/);
  const start = KEY_TYPE.test(fields[0]) ? 0 : KEY_TYPE.test(fields[1] ?? '') ? 1 : -1;
  const notAKey = (why: string) => new HostKeyFormatError(
    `is not a public host key (${why}): expected "ssh-ed25519 AAAA…" (or a known_hosts line), as printed by \`ssh-keyscan -t ed25519 <host>\``, 'not-a-key');
  if (start < 0) throw notAKey('no key type such as ssh-ed25519');
  const type = fields[start];
  const b64 = fields[start + 1];
  if (!b64 || !BASE64.test(b64)) throw notAKey(`no base64 key after ${type}`);
  const blob = Buffer.from(b64, 'base64');
  const declared = blobType(blob);
  if (declared !== type) throw notAKey(declared ? `the key data is a ${declared} key, not ${type}` : 'the key data is not an SSH public key');
  return { type, blob, authorizedKey: `${type} ${b64}`, fingerprint: hostKeyFingerprint(blob) };
}
