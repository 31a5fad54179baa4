/**
 * What `ssh-keyscan` does, without it: connects to an sshd, takes the host key it offers and hangs
 * up before authenticating (no credential is sent). `d8 trust` shows and records it.
 */
import { NodeSSH } from 'node-ssh';
import { hostKeyFingerprint, parseHostKey, type HostKey } from './host-key';

/** ssh2's host key algorithm names for a key type (an RSA key signs with rsa-sha2-*). */
export function hostKeyAlgorithms(type: string): string[] {
  return type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
}

/** A blob the server offered, as a HostKey. */
export function offeredHostKey(blob: Buffer): HostKey {
  const type = blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1');
  const key = parseHostKey(`${type} ${blob.toString('base64')}`);
  if (key.fingerprint !== hostKeyFingerprint(blob)) throw new Error('host key changed while parsing');
  return key;
}

export class KeyscanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyscanError';
  }
}

/** The host key `host:port` offers (of `type` when given and the server has one). */
export async function scanHostKey(host: string, port: number, opts: { type?: string; timeoutMs?: number } = {}): Promise<HostKey> {
  const ssh = new NodeSSH();
  let offered: Buffer | undefined;
  try {
    await ssh.connect({
      host, port, username: 'd8-keyscan', readyTimeout: opts.timeoutMs ?? 10000,
      ...(opts.type ? { algorithms: { serverHostKey: hostKeyAlgorithms(opts.type) } } : {}),
      hostVerifier: (key: Buffer): boolean => {
        offered = key;
        return false;
      },
    });
  } catch (err) {
    if (!offered) {
      // Perhaps the server has no key of that type any more: then whatever it offers.
      if (opts.type) return scanHostKey(host, port, { timeoutMs: opts.timeoutMs });
      throw new KeyscanError(`cannot get the SSH host key of ${host}:${port}: ${(err as Error).message ?? String(err)}`);
    }
  } finally {
    ssh.dispose();
  }
  if (!offered) throw new KeyscanError(`${host}:${port} offered no host key`);
  return offeredHostKey(offered);
}
