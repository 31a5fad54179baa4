/** The stack's hostKey, read once for both engines (core/host-key.ts). */
import { execFileSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { HostKeyFormatError, parseHostKey } from '../../core/host-key';

describe('parseHostKey', () => {
  let key: string;
  let fingerprint: string;
  beforeAll(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-hostkey-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'root@pc', '-f', path.join(dir, 'k')]);
    key = fs.readFileSync(path.join(dir, 'k.pub'), 'utf8').trim();
    fingerprint = /(SHA256:\S+)/.exec(execFileSync('ssh-keygen', ['-lf', path.join(dir, 'k.pub')], { encoding: 'utf8' }))![1];
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['the key alone', (k: string) => k.split(' ').slice(0, 2).join(' ')],
    ['the key with a comment', (k: string) => k],
    ['a known_hosts line', (k: string) => `pc.lan ${k}`],
    ['a known_hosts line with a port and surrounding blank lines', (k: string) => `\n[10.0.0.2]:2222 ${k}\n\n`],
    ['ssh-keyscan output with its comment line', (k: string) => `# 10.0.0.2:22 SSH-2.0-OpenSSH_9.2\n10.0.0.2 ${k}`],
  ])('reads %s: the authorized_keys form and the SHA256 fingerprint ssh-keygen prints', (_what, line) => {
    const k = parseHostKey(line(key));
    expect(k.type).toBe('ssh-ed25519');
    expect(k.authorizedKey).toBe(key.split(' ').slice(0, 2).join(' '));
    expect(k.fingerprint).toBe(fingerprint);
    expect(k.blob.toString('base64')).toBe(key.split(' ')[1]);
  });

  it.each([
    ['', 'line-count', /exactly one public host key line \(got 0\)/],
    ['a b\nc d', 'line-count', /exactly one public host key line \(got 2\)/],
    ['SHA256:abc', 'not-a-key', /no key type such as ssh-ed25519/],
    ['ssh-ed25519', 'not-a-key', /no base64 key after ssh-ed25519/],
    ['ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAICJKrKOIy+fshvoA0J1p9E41hZEIMrTEL/UbWfDEzmit', 'not-a-key', /the key data is a ssh-ed25519 key, not ssh-rsa/],
    ['ssh-ed25519 aGVsbG8=', 'not-a-key', /the key data is not an SSH public key/],
  ])('refuses %j (%s) saying what is wrong', (raw, problem, message) => {
    let err: unknown;
    try {
      parseHostKey(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HostKeyFormatError);
    expect((err as HostKeyFormatError).problem).toBe(problem);
    expect((err as Error).message).toMatch(message);
  });
});
