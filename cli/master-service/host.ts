/**
 * The side effects of `d8 master install|uninstall`: which node to run, privilege (root or sudo -n),
 * writing the unit and the environment file, systemctl. The unit text itself is cli/master-service/unit.ts.
 */
import { execFileSync, spawnSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { runtimeName, runtimeSource, type RuntimeArch } from '../../core/node-runtime';
import { RuntimeCache, runtimesDir } from '../../core/runtime-cache';
import { UNPACK_RUNTIME_SCRIPT, unpackRuntimeArgs } from '../../core/runtime-unpack';
import { meetsEnginesFloor } from './unit';

/** This machine cannot be made a master by this command (no systemd, no privilege, no usable node). */
export class ServiceInstallError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
    this.name = 'ServiceInstallError';
  }
}

export const EXIT_NEEDS_ROOT = 3;
export const EXIT_NOT_POSSIBLE = 4;

export interface ChosenNode { path: string; version: string; source: 'running' | 'pinned-runtime' }

export function runtimeArchOf(arch: string): RuntimeArch | null {
  return arch === 'x64' ? 'x64' : arch === 'arm64' ? 'arm64' : arch === 'arm' ? 'armv7l' : null;
}

/** The node running this command when it meets the engines floor, else the pinned runtime, unpacked under D8_HOME/runtimes/master. */
export async function chooseNode(o: { engines: string; d8Home: string; nodeVersion?: string; nodeDistUrl?: string; dryRun: boolean; say: (m: string) => void }): Promise<ChosenNode> {
  if (meetsEnginesFloor(process.version, o.engines)) return { path: process.execPath, version: process.version, source: 'running' };
  const arch = runtimeArchOf(process.arch);
  if (!arch) throw new ServiceInstallError(`node ${process.version} is below the engines floor (${o.engines}) and there is no pinned runtime for ${process.arch}: install node ≥ 20 yourself`, EXIT_NOT_POSSIBLE);
  const env = { ...process.env, D8_HOME: o.d8Home };
  const src = runtimeSource({ nodeVersion: o.nodeVersion, nodeDistUrl: o.nodeDistUrl });
  const root = path.join(runtimesDir(env), 'master');
  const name = runtimeName(src.version, arch);
  const node = path.join(root, name, 'bin', 'node');
  o.say(`node ${process.version} is below the engines floor (${o.engines}): using the master's pinned runtime ${src.version} (linux-${arch})`);
  if (o.dryRun || fs.existsSync(node)) return { path: node, version: src.version, source: 'pinned-runtime' };
  const cached = await new RuntimeCache({ env, onProgress: o.say }).ensure(src, arch);
  fs.mkdirSync(path.join(root, '.incoming'), { recursive: true, mode: 0o700 });
  // The unpack script removes the tarball it unpacked: give it a copy, the cache keeps its own for slaves.
  const incoming = path.join(root, '.incoming', path.basename(cached.file));
  fs.copyFileSync(cached.file, incoming);
  const r = spawnSync('sh', ['-c', `sh -c "$0" d8-runtime ${unpackRuntimeArgs({ file: incoming, sha256: cached.sha256, name, root, version: src.version })}`, UNPACK_RUNTIME_SCRIPT], { encoding: 'utf8' });
  if (r.status !== 0) throw new ServiceInstallError(`cannot unpack ${cached.file}: ${(r.stderr || r.stdout).trim()}`, EXIT_NOT_POSSIBLE);
  o.say(r.stdout.trim());
  return { path: node, version: src.version, source: 'pinned-runtime' };
}

/** The native module the store needs must load in the chosen node (its ABI is the node's, not npm's). */
export function checkNativeModules(node: string, checkout: string): string | null {
  const r = spawnSync(node, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], { cwd: checkout, encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) return null;
  const why = (r.stderr || r.error?.message || '').trim().split('\n').find((l) => /Error|error/.test(l)) ?? `exit ${r.status}`;
  return `better-sqlite3 does not load in ${node}: ${why}. Rebuild it for that node: (cd ${checkout} && PATH=${path.dirname(node)}:$PATH npm rebuild better-sqlite3)`;
}

export type Privilege = { kind: 'root' } | { kind: 'sudo' } | { kind: 'none'; why: string };

export function privilege(): Privilege {
  if (process.getuid?.() === 0) return { kind: 'root' };
  const r = spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore', timeout: 30_000 });
  if (r.error) return { kind: 'none', why: 'not root, and sudo is not installed' };
  if (r.status !== 0) return { kind: 'none', why: 'not root, and sudo -n asks for a password (or is not allowed)' };
  return { kind: 'sudo' };
}

/** Runs argv as root: directly when root, else through `sudo -n`. */
export function asRoot(p: Privilege, argv: string[]): void {
  const [cmd, ...args] = p.kind === 'root' ? argv : ['sudo', '-n', ...argv];
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 120_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new ServiceInstallError(`${argv.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`, EXIT_NOT_POSSIBLE);
  }
}

export function hasSystemd(): boolean {
  return fs.existsSync('/run/systemd/system');
}

/** The invoking user: SUDO_USER under sudo, else whoever runs this. */
export function invokingUser(): string {
  return (process.getuid?.() === 0 && process.env.SUDO_USER) || os.userInfo().username;
}

export function homeOf(user: string): string {
  const r = spawnSync('getent', ['passwd', user], { encoding: 'utf8' });
  const home = r.status === 0 ? r.stdout.trim().split(':')[5] : undefined;
  if (!home) throw new ServiceInstallError(`no user ${user} on this machine (getent passwd ${user})`, EXIT_NOT_POSSIBLE);
  return home;
}

export interface IdPair { uid: number; gid: number }
export function idsOf(user: string): IdPair {
  const r = spawnSync('getent', ['passwd', user], { encoding: 'utf8' });
  const f = r.stdout.trim().split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** Creates D8_HOME (0700) and the env file (0600) owned by the service user; an existing env file is kept as it is. */
export function ensureEnvFile(d8Home: string, file: string, text: string, owner: IdPair): boolean {
  const mine = process.getuid?.() === owner.uid;
  if (!fs.existsSync(d8Home)) {
    fs.mkdirSync(d8Home, { recursive: true, mode: 0o700 });
    if (!mine) fs.chownSync(d8Home, owner.uid, owner.gid);
  }
  if (fs.existsSync(file)) {
    fs.chmodSync(file, 0o600);
    return false;
  }
  fs.writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
  if (!mine) fs.chownSync(file, owner.uid, owner.gid);
  return true;
}
