/**
 * Where the installer runs: a slave over SSH (node-ssh) or this machine (`host: local`, a local
 * `sh -c`). Both run the same command lines (agent/install/command.ts) with the token on stdin.
 */
import { spawn } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { NodeSSH } from 'node-ssh';
import type { Readable } from 'stream';
import { ConfigError, type FleetConfig, type SlaveConfig } from '../../../core/stack-config';
import { hostKeyFingerprint, HostKeyFormatError, parseHostKey, type HostKey } from '../../../core/host-key';
import { KnownHosts } from '../../../core/known-hosts';
import { loadSshPrivateKey, type SshPrivateKey } from '../../../core/ssh-key';
import { hostKeyAlgorithms, offeredHostKey } from '../../../core/ssh-keyscan';
import { DeployConfigError, DeployTimeoutError, SlaveConnectError } from './errors';
import { killSession } from './kill-session';

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

export interface ExecOptions {
  /** Text, or a stream piped to the command's stdin (e.g. an image for `docker load`). */
  stdin?: string | Readable;
  /** Called with each complete stderr line as it arrives (installer progress). */
  onStderrLine?: (line: string) => void;
  timeoutMs?: number;
}

export interface SlaveShell {
  /** Where it runs, for messages: `user@host:port` or `local`. */
  readonly where: string;
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Copies local files to absolute remote paths (parent directories must exist). */
  upload(files: Array<{ local: string; remote: string }>): Promise<void>;
  close(): Promise<void>;
}

function lineSplitter(onLine?: (line: string) => void): (chunk: Buffer | string) => void {
  let rest = '';
  return (chunk) => {
    if (!onLine) return;
    rest += chunk.toString();
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) onLine(l.replace(/\r$/, ''));
  };
}

function withTimeout<T>(p: Promise<T>, ms: number | undefined, what: string, onTimeout: () => void): Promise<T> {
  if (!ms) return p;
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new DeployTimeoutError(`${what} did not finish within ${Math.round(ms / 1000)} s`));
    }, ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export interface SshTarget {
  name: string;
  host: string;
  port: number;
  user: string;
  privateKey: string;
  /** Where the key came from, for messages (never the key itself). */
  keyDescription: string;
  /** The stack's `hostKey` (a known_hosts line or `ssh-ed25519 AAAA…`): when set, the server's key must match. */
  hostKey?: string;
  /** Without a `hostKey`: the key recorded here is required, or the one offered is recorded (trust on first use). */
  knownHosts?: KnownHosts;
  /** Called once when a host's key is recorded on first use. */
  onFirstUse?: (key: HostKey) => void;
  readyTimeoutMs?: number;
}

export interface SshTargetOptions {
  readyTimeoutMs?: number;
  /** D8_HOME (its known_hosts) comes from here; default process.env. */
  env?: NodeJS.ProcessEnv;
  onFirstUse?: (key: HostKey) => void;
}

/** The SSH target of a remote slave with the fleet's key; a missing or unusable key is a DeployConfigError. */
export function sshTarget(slave: SlaveConfig, config: Pick<FleetConfig, 'stack' | 'sshPrivateKey' | 'sshKeyPath'>, opts: SshTargetOptions = {}): SshTarget {
  let key: SshPrivateKey;
  try {
    key = loadSshPrivateKey(config);
  } catch (err) {
    if (err instanceof ConfigError) throw new DeployConfigError(`${slave.name}: ${err.message}`);
    throw err;
  }
  return {
    name: slave.name, host: slave.host, port: slave.sshPort, user: slave.user, privateKey: key.text, keyDescription: key.description,
    hostKey: slave.hostKey, knownHosts: KnownHosts.forEnv(opts.env), onFirstUse: opts.onFirstUse, readyTimeoutMs: opts.readyTimeoutMs ?? 10000,
  };
}

/** What the server offered when it was not the expected host key. */
export interface HostKeyMismatch {
  expected: HostKey;
  offered: Buffer;
  /** `stack`: the stack's hostKey; a path: the known_hosts file that recorded it. */
  source: 'stack' | { knownHosts: string };
}

/** Turns ssh2/node errors into one sentence that says what to check. */
export function explainConnectError(err: unknown, t: SshTarget, mismatch?: HostKeyMismatch): SlaveConnectError {
  const e = err as NodeJS.ErrnoException & { level?: string };
  const where = `${t.user}@${t.host}:${t.port}`;
  const msg = e?.message ?? String(err);
  if (mismatch?.source === 'stack') {
    return new SlaveConnectError(`${t.name}: the SSH host key of ${t.host}:${t.port} does not match the configured hostKey: ` +
      `expected ${mismatch.expected.type} ${mismatch.expected.fingerprint}, the host offered ${hostKeyFingerprint(mismatch.offered)} ` +
      '(the host was reinstalled, or this is not the host you think): check it, then update hostKey in the stack config', 'host-key');
  }
  if (mismatch) {
    return new SlaveConnectError(`${t.name}: the SSH host key of ${t.host}:${t.port} CHANGED: recorded ${mismatch.expected.type} ${mismatch.expected.fingerprint} ` +
      `(in ${mismatch.source.knownHosts}), the host now offers ${hostKeyFingerprint(mismatch.offered)}; nothing was sent to it. ` +
      `If the host was reinstalled, compare that fingerprint with \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` on its console, then run \`d8 trust ${t.name}\`; ` +
      'otherwise someone may be impersonating it', 'host-key');
  }
  if (e?.code === 'ECONNREFUSED') {
    return new SlaveConnectError(`${t.name}: cannot reach ${t.host}:${t.port} over SSH: connection refused (is the host up, sshd running, and sshPort right?)`, 'refused');
  }
  if (e?.code === 'EHOSTUNREACH' || e?.code === 'ENETUNREACH' || e?.code === 'EHOSTDOWN') {
    return new SlaveConnectError(`${t.name}: ${t.host} is unreachable (${e.code}): is the host up and on this network?`, 'unreachable');
  }
  if (e?.code === 'ENOTFOUND' || e?.code === 'EAI_AGAIN') {
    return new SlaveConnectError(`${t.name}: unknown host name "${t.host}" (${e.code}): fix host in the stack config or DNS`, 'unknown-host');
  }
  if (e?.code === 'ETIMEDOUT' || /timed out/i.test(msg)) {
    return new SlaveConnectError(`${t.name}: no SSH answer from ${t.host}:${t.port} within ${Math.round((t.readyTimeoutMs ?? 10000) / 1000)} s (host down, or a firewall drops the port?)`, 'timeout');
  }
  if (e?.level === 'client-authentication' || /authentication methods failed/i.test(msg)) {
    return new SlaveConnectError(`${t.name}: SSH login as ${where} was rejected: the key ${t.keyDescription} is not authorized for ${t.user} ` +
      `(add its public key to ~${t.user}/.ssh/authorized_keys on ${t.host}, or set the right key with D8_SSH_KEY_PATH / d8:sshKeyPath)`, 'auth');
  }
  if (/privateKey|private key|Cannot parse|passphrase/i.test(msg)) {
    return new SlaveConnectError(`${t.name}: the SSH key ${t.keyDescription} cannot be used (${msg}); use an unencrypted OpenSSH/PEM key`, 'key');
  }
  return new SlaveConnectError(`${t.name}: SSH connection to ${where} failed: ${msg}`, 'other');
}

function configuredHostKey(t: SshTarget): HostKey {
  try {
    return parseHostKey(t.hostKey ?? '');
  } catch (err) {
    if (err instanceof HostKeyFormatError) throw new DeployConfigError(`${t.name}: hostKey ${err.message}; fix hostKey of ${t.name} in the stack config`);
    throw err;
  }
}

export class SshShell implements SlaveShell {
  readonly where: string;
  private constructor(private readonly ssh: NodeSSH, t: SshTarget) {
    this.where = `${t.user}@${t.host}:${t.port}`;
  }

  static async connect(t: SshTarget): Promise<SshShell> {
    const pinned = t.hostKey === undefined ? undefined : configuredHostKey(t);
    const recorded = pinned || !t.knownHosts ? null : t.knownHosts.lookup(t.host, t.port);
    const expected = pinned ?? recorded?.key;
    const source: HostKeyMismatch['source'] = pinned ? 'stack' : { knownHosts: t.knownHosts?.file ?? '' };
    const ssh = new NodeSSH();
    let mismatch: HostKeyMismatch | undefined;
    let offered: Buffer | undefined;
    try {
      await ssh.connect({
        host: t.host,
        port: t.port,
        username: t.user,
        privateKey: t.privateKey,
        readyTimeout: t.readyTimeoutMs ?? 10000,
        keepaliveInterval: 15000,
        tryKeyboard: false,
        // Only the expected key's type is negotiated, so a host with several keys offers that one.
        ...(expected ? { algorithms: { serverHostKey: hostKeyAlgorithms(expected.type) } } : {}),
        hostVerifier: (key: Buffer): boolean => {
          offered = key;
          if (!expected) return true;
          const ok = key.equals(expected.blob);
          mismatch = ok ? undefined : { expected, offered: key, source };
          return ok;
        },
      });
    } catch (err) {
      ssh.dispose();
      throw explainConnectError(err, t, mismatch);
    }
    // First use: recorded once the login worked (a host that refuses our key is not remembered).
    if (!expected && t.knownHosts && offered) {
      const key = offeredHostKey(offered);
      t.knownHosts.recordFirstUse(t.host, t.port, key, t.name);
      t.onFirstUse?.(key);
    }
    return new SshShell(ssh, t);
  }

  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const onErr = lineSplitter(opts.onStderrLine);
    const run = this.ssh.execCommand(command, { stdin: opts.stdin, onStderr: onErr, noTrim: true })
      .then((r) => ({ stdout: r.stdout, stderr: r.stderr, code: r.code }));
    return withTimeout(run, opts.timeoutMs, `"${command.slice(0, 80)}" on ${this.where}`, () => this.ssh.dispose());
  }

  async upload(files: Array<{ local: string; remote: string }>): Promise<void> {
    await this.ssh.putFiles(files, { concurrency: 4 });
  }

  async close(): Promise<void> {
    this.ssh.dispose();
  }
}

/**
 * What a local installer gets of the master's environment: enough to find its tools, the user's
 * systemd manager and docker engine, and nothing else (the master's holds its SSH key, Telegram
 * token, …; the installer and the agent it starts must not see them).
 */
export const LOCAL_INSTALLER_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'USER', 'LOGNAME', 'TMPDIR', 'XDG_RUNTIME_DIR', 'DBUS_SESSION_BUS_ADDRESS', 'DOCKER_HOST'] as const;

export function localInstallerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const k of LOCAL_INSTALLER_ENV) if (env[k] !== undefined) out[k] = env[k];
  out.HOME ??= os.homedir();
  out.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  return out;
}

/** `host: local`: the same commands through `sh -c` as the current user, in its home, with localInstallerEnv. */
export class LocalShell implements SlaveShell {
  readonly where = 'local';
  private readonly env: NodeJS.ProcessEnv;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.env = localInstallerEnv(env);
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      // Detached: `sh` leads a session of its own, so a time-out ends everything it started, not only `sh`.
      const child = spawn('sh', ['-c', command], { cwd: this.env.HOME, env: this.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      let stdout = '';
      let stderr = '';
      const onErr = lineSplitter(opts.onStderrLine);
      let timer: NodeJS.Timeout | undefined;
      if (opts.timeoutMs) {
        timer = setTimeout(() => {
          if (child.pid !== undefined) killSession(child.pid);
          reject(new DeployTimeoutError(`"${command.slice(0, 80)}" did not finish within ${Math.round(opts.timeoutMs! / 1000)} s`));
        }, opts.timeoutMs);
      }
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); onErr(d); });
      child.on('error', (err) => { clearTimeout(timer); reject(err); });
      // The installer detaches the agent with its fds redirected, so 'close' comes when sh exits.
      child.on('close', (code) => { clearTimeout(timer); resolve({ stdout, stderr, code }); });
      child.stdin.on('error', () => { /* the command may exit before reading stdin */ });
      if (opts.stdin !== undefined && typeof opts.stdin !== 'string') opts.stdin.pipe(child.stdin);
      else child.stdin.end(opts.stdin ?? '');
    });
  }

  async upload(files: Array<{ local: string; remote: string }>): Promise<void> {
    for (const f of files) {
      fs.mkdirSync(path.dirname(f.remote), { recursive: true, mode: 0o700 });
      fs.copyFileSync(f.local, f.remote);
    }
  }

  async close(): Promise<void> {
    /* nothing to close */
  }
}
