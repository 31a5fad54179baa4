/** Real inputs for the program under mocks: real bundles, a real key pair, a random token. */
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { buildBundle, type BundleInfo } from '../../../agent/bundle/build';
import type { VersionInfo } from '../../../core/version-info';

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const randomToken = (): string => crypto.randomBytes(32).toString('base64url');
export const randomCommit = (): string => crypto.randomBytes(20).toString('hex');

/** A fresh ed25519 private key in PEM, and its public half in OpenSSH form for host-key tests. */
export function keyPair(): { privatePem: string; publicOpenSsh: string } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const raw = (publicKey.export({ format: 'der', type: 'spki' }) as Buffer).subarray(-32);
  const type = Buffer.from('ssh-ed25519');
  const len = (b: Buffer) => { const l = Buffer.alloc(4); l.writeUInt32BE(b.length); return l; };
  const blob = Buffer.concat([len(type), type, len(raw), raw]).toString('base64');
  return { privatePem, publicOpenSsh: `ssh-ed25519 ${blob}` };
}

export function versionInfo(commit: string): VersionInfo {
  return { branch: 'main', commit, version: '0.1.0', deployed_at: new Date().toISOString(), dirty: false };
}

/** A real agent bundle (agent/bundle/build.ts) reporting `commit`, built under `root`. */
export function bundleFor(root: string, commit: string): Promise<BundleInfo> {
  return buildBundle({ outRoot: root, versionInfo: versionInfo(commit) });
}
