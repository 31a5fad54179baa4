/**
 * The SSH host keys the master trusts, `D8_HOME/known_hosts`, in OpenSSH's format (`host key-type
 * base64 comment`, `[host]:port` for a port other than 22; the comment is the slave's name), so
 * `ssh -o UserKnownHostsFile=~/.d8/known_hosts` reads it too. Trust on first use: the first
 * connection to a host:port records its key (appended: concurrent first uses cannot lose a line),
 * later ones must see the same key; `d8 trust` replaces it (a rewrite through a temporary file).
 * Both engines read it: the direct deployer verifies against it, the Pulumi program pins it.
 */
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { parseHostKey, type HostKey } from './host-key';
import { d8Home, ensurePrivateDir } from './paths';

export const KNOWN_HOSTS_FILE = 'known_hosts';

export function knownHostsPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(d8Home(env), KNOWN_HOSTS_FILE);
}

/** OpenSSH's host field: `host` on port 22, else `[host]:port`. */
export function knownHostsPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export interface KnownHost {
  key: HostKey;
  /** The slave it was recorded for (the line's comment), when there is one. */
  slave: string | null;
}

export class KnownHosts {
  constructor(readonly file: string) {}

  static forEnv(env: NodeJS.ProcessEnv = process.env): KnownHosts {
    return new KnownHosts(knownHostsPath(env));
  }

  private lines(): string[] {
    try {
      return fs.readFileSync(this.file, 'utf8').split('\n');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /** The key recorded for host:port (the last line wins), or null. A garbled line is skipped. */
  lookup(host: string, port: number): KnownHost | null {
    const pattern = knownHostsPattern(host, port);
    let found: KnownHost | null = null;
    for (const line of this.lines()) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 3 || fields[0].startsWith('#') || !fields[0].split(',').includes(pattern)) continue;
      try {
        found = { key: parseHostKey(`${fields[1]} ${fields[2]}`), slave: fields[3] ?? null };
      } catch { /* not a key line: ignored, as ssh does */ }
    }
    return found;
  }

  /** Records the first key seen for host:port. */
  recordFirstUse(host: string, port: number, key: HostKey, slave: string): void {
    ensurePrivateDir(path.dirname(this.file));
    fs.appendFileSync(this.file, `${knownHostsPattern(host, port)} ${key.authorizedKey} ${slave}\n`, { mode: 0o600 });
  }

  /** Replaces whatever host:port had with `key` (`d8 trust`). */
  replace(host: string, port: number, key: HostKey, slave: string): void {
    const pattern = knownHostsPattern(host, port);
    const kept = this.lines().filter((l) => l.trim() !== '' && !l.trim().split(/\s+/)[0].split(',').includes(pattern));
    ensurePrivateDir(path.dirname(this.file));
    const tmp = `${this.file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
    fs.writeFileSync(tmp, [...kept, `${pattern} ${key.authorizedKey} ${slave}`].join('\n') + '\n', { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }
}
