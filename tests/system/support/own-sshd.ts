/**
 * A test's own sshd for one of the test hosts' users, with a host key of its own that the test can
 * regenerate (a "reinstalled" host), on the same loopback address and another port. It runs with
 * the test host's sshd_config (same user, same authorized key), so what it serves is that host.
 */
import { execFileSync, spawn, type ChildProcess } from 'child_process';
import fs from 'fs';
import net from 'net';
import path from 'path';
import type { TestHost } from './hosts';

const STATE = process.env.D8_TEST_HOSTS_DIR ?? '/var/lib/d8-test-hosts';

function waitForPort(host: string, port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tryOnce = (): void => {
      const s = net.connect({ host, port });
      s.once('connect', () => { s.destroy(); resolve(); });
      s.once('error', () => {
        if (Date.now() > until) reject(new Error(`sshd on ${host}:${port} did not come up within ${ms} ms`));
        else setTimeout(tryOnce, 100);
      });
    };
    tryOnce();
  });
}

export class OwnSshd {
  private child: ChildProcess | null = null;
  private log = '';
  readonly keyFile: string;
  private readonly configFile: string;

  constructor(readonly base: TestHost, readonly port: number, readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.keyFile = path.join(dir, 'ssh_host_ed25519_key');
    this.configFile = path.join(dir, 'sshd_config');
    const baseConfig = fs.readFileSync(path.join(STATE, 'hosts', base.shape, 'sshd_config'), 'utf8');
    const config = baseConfig.split('\n').filter((l) => !/^(ListenAddress|HostKey|PidFile)\s/.test(l));
    config.push(`ListenAddress ${base.host}:${port}`, `HostKey ${this.keyFile}`, `PidFile ${path.join(dir, 'sshd.pid')}`);
    fs.writeFileSync(this.configFile, config.join('\n') + '\n');
    this.newHostKey();
  }

  /** A fresh host key (what reinstalling the host does); takes effect at the next start. */
  newHostKey(): void {
    fs.rmSync(this.keyFile, { force: true });
    fs.rmSync(`${this.keyFile}.pub`, { force: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'own-sshd', '-f', this.keyFile]);
  }

  /** `ssh-ed25519 AAAA…` of the current host key. */
  publicKey(): string {
    return fs.readFileSync(`${this.keyFile}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  }

  /** `SHA256:…` as ssh-keygen prints it (independent of our parser). */
  fingerprint(): string {
    const out = execFileSync('ssh-keygen', ['-lf', `${this.keyFile}.pub`], { encoding: 'utf8' });
    return /(SHA256:\S+)/.exec(out)![1];
  }

  async start(): Promise<void> {
    fs.mkdirSync('/run/sshd', { recursive: true });
    this.child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', this.configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr?.on('data', (d: Buffer) => { this.log += d.toString(); });
    await waitForPort(this.base.host, this.port, 15000).catch((e: Error) => { throw new Error(`${e.message}\n${this.log}`); });
  }

  async stop(): Promise<void> {
    const c = this.child;
    this.child = null;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });
  }

  async restartWithNewKey(): Promise<void> {
    await this.stop();
    this.newHostKey();
    await this.start();
  }
}
