/** D8_HOME/known_hosts (core/known-hosts.ts) and the one SSH key loader both engines use (core/ssh-key.ts). */
import { execFileSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { parseHostKey, type HostKey } from '../../core/host-key';
import { KnownHosts, knownHostsPath } from '../../core/known-hosts';
import { loadSshPrivateKey } from '../../core/ssh-key';
import { ConfigError } from '../../core/stack-config';

let dir: string;
const keys: HostKey[] = [];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-known-hosts-'));
  for (const n of ['a', 'b']) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, n)]);
    keys.push(parseHostKey(fs.readFileSync(path.join(dir, `${n}.pub`), 'utf8')));
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('KnownHosts', () => {
  it('lives in D8_HOME', () => {
    expect(knownHostsPath({ D8_HOME: '/srv/d8' })).toBe('/srv/d8/known_hosts');
  });

  it('records in OpenSSH format (port 22 bare, others bracketed), mode 0600, and ssh-keygen -F finds the entries', () => {
    const kh = new KnownHosts(path.join(dir, 'fmt', 'known_hosts'));
    expect(kh.lookup('10.0.0.2', 22)).toBeNull();
    kh.recordFirstUse('10.0.0.2', 22, keys[0], 'desktop');
    kh.recordFirstUse('10.0.0.3', 2222, keys[1], 'vps');
    expect(fs.readFileSync(kh.file, 'utf8')).toBe(`10.0.0.2 ${keys[0].authorizedKey} desktop\n[10.0.0.3]:2222 ${keys[1].authorizedKey} vps\n`);
    expect(fs.statSync(kh.file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(kh.file)).mode & 0o777).toBe(0o700);
    const found = execFileSync('ssh-keygen', ['-F', '[10.0.0.3]:2222', '-f', kh.file], { encoding: 'utf8' });
    expect(found).toContain(keys[1].authorizedKey);
    expect(kh.lookup('10.0.0.2', 22)).toMatchObject({ slave: 'desktop', key: { fingerprint: keys[0].fingerprint } });
    expect(kh.lookup('10.0.0.3', 2222)?.key.fingerprint).toBe(keys[1].fingerprint);
    // Same host, other port: a different entry.
    expect(kh.lookup('10.0.0.3', 22)).toBeNull();
  });

  it('replace swaps one host:port entry and keeps the others; garbled lines and comments are skipped', () => {
    const kh = new KnownHosts(path.join(dir, 'replace', 'known_hosts'));
    fs.mkdirSync(path.dirname(kh.file));
    fs.writeFileSync(kh.file, `# a comment\ngarbage line here\n[h]:2222 ssh-ed25519 notbase64!! x\n`);
    kh.recordFirstUse('h', 2222, keys[0], 's');
    kh.recordFirstUse('other', 22, keys[0], 'o');
    expect(kh.lookup('h', 2222)?.key.fingerprint).toBe(keys[0].fingerprint);
    kh.replace('h', 2222, keys[1], 's');
    expect(kh.lookup('h', 2222)?.key.fingerprint).toBe(keys[1].fingerprint);
    expect(kh.lookup('other', 22)?.key.fingerprint).toBe(keys[0].fingerprint);
    expect(fs.readFileSync(kh.file, 'utf8').split('\n').filter((l) => l.startsWith('[h]:2222'))).toHaveLength(1);
    expect(fs.statSync(kh.file).mode & 0o777).toBe(0o600);
  });
});

describe('loadSshPrivateKey', () => {
  it('the secret wins over the file and gets its final newline back', () => {
    const k = loadSshPrivateKey({ stack: 's', sshPrivateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----', sshKeyPath: path.join(dir, 'a') });
    expect(k.text.endsWith('-----END OPENSSH PRIVATE KEY-----\n')).toBe(true);
    expect(k.description).toBe('(from D8_SSH_PRIVATE_KEY / d8:sshPrivateKey)');
  });

  it('reads the key file', () => {
    expect(loadSshPrivateKey({ stack: 's', sshKeyPath: path.join(dir, 'a') })).toEqual({ text: fs.readFileSync(path.join(dir, 'a'), 'utf8'), description: path.join(dir, 'a') });
  });

  it.each([
    ['no key at all', {}, /stack s: no SSH key is configured: set d8:sshKeyPath/],
    ['a missing file', { sshKeyPath: '/nonexistent/id' }, /d8:sshKeyPath \/nonexistent\/id cannot be read \(ENOENT\)/],
    ['the .pub file', { sshKeyPath: 'PUB' }, /is not a private key .*did you give the \.pub file\?/],
  ])('%s is a ConfigError naming the fix', (_what, cfg: { sshKeyPath?: string }, message) => {
    const c = { stack: 's', ...cfg, sshKeyPath: cfg.sshKeyPath === 'PUB' ? path.join(dir, 'a.pub') : cfg.sshKeyPath };
    let err: unknown;
    try { loadSshPrivateKey(c); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(message);
  });
});
