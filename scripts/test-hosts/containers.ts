/**
 * Real, separate test hosts for the `hosts` tier: Docker containers with their own Debian bookworm
 * root filesystem and systemd as PID 1 (images from scripts/host-images.sh), sshd and the agent's port
 * published on 127.0.0.1. Root-side inspection (`docker exec`) sees what an install left, independent
 * of the code under test. Every container and network is named `d8h-…`.
 */
import { execFile, execFileSync, spawnSync } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import net from 'net';
import path from 'path';
import { promisify } from 'util';
import type { Supervisor } from '../../core/protocol';

const execFileP = promisify(execFile);

export const HOST_IMAGE_REPO = 'd8h-host';
/** The images scripts/host-images.sh builds (one build target each). */
export const HOST_IMAGES = ['node', 'cron', 'polkit', 'sudo', 'sudolinger', 'nonode'] as const;
export type HostImage = (typeof HOST_IMAGES)[number];

export interface HostShapeSpec {
  image: HostImage;
  /** The SSH login (the installer runs as this user). */
  user: 'd8' | 'root';
  /** `internal`: a Docker network with no route out; the master reaches the host by its bridge IP only. */
  network: 'bridge' | 'internal';
  /** What the installer should pick on this host. */
  supervisor: Supervisor;
  /** The host has no node: the deploy pushes the master's runtime. */
  needsRuntime?: true;
  what: string;
}

export const HOST_SHAPES = {
  /** (a) a fresh VPS: python3, no node, no docker. */
  fresh: { image: 'nonode', user: 'd8', network: 'bridge', supervisor: 'setsid', needsRuntime: true, what: 'no node, python3 present (a fresh VPS): no polkit, sudo or cron, so setsid' },
  /** (b) node present, no polkit, no cron, no sudo: logind refuses linger. */
  node: { image: 'node', user: 'd8', network: 'bridge', supervisor: 'setsid', what: 'node, no polkit: linger refused, setsid only' },
  /** node, no polkit, cron installed. */
  cron: { image: 'cron', user: 'd8', network: 'bridge', supervisor: 'cron', what: 'node, no polkit, cron: @reboot entry' },
  /** (c) polkit present: the user may enable its own linger. */
  polkit: { image: 'polkit', user: 'd8', network: 'bridge', supervisor: 'user-unit', what: 'polkit: user unit with linger' },
  /** (d) root login. */
  root: { image: 'node', user: 'root', network: 'bridge', supervisor: 'system-unit', what: 'root login: system unit' },
  /** passwordless sudo, no root login. */
  sudo: { image: 'sudo', user: 'd8', network: 'bridge', supervisor: 'system-unit', what: 'sudo -n: system unit without a root login' },
  /** sudo for loginctl only: logind refuses the user's own linger, `sudo -n loginctl enable-linger` does it. */
  sudolinger: { image: 'sudolinger', user: 'd8', network: 'bridge', supervisor: 'user-unit', what: 'sudo for loginctl only: user unit, linger through sudo' },
  /** (e) no route to any mirror: only SSH (and the agent port) reach it, from this machine. */
  offline: { image: 'nonode', user: 'd8', network: 'internal', supervisor: 'setsid', needsRuntime: true, what: 'no node, no route to any mirror: setsid, as (a)' },
} satisfies Record<string, HostShapeSpec>;
export type HostShape = keyof typeof HOST_SHAPES;

export const OFFLINE_NETWORK = 'd8h-offline';

export interface ContainerHost {
  shape: HostShape;
  container: string;
  user: string;
  /** Where the master connects: 127.0.0.1 with published ports, or the bridge IP on the internal network. */
  host: string;
  sshPort: number;
  agentPort: number;
  /** The sshd's host key, known_hosts style (`ssh-ed25519 AAAA…`). */
  hostKey: string;
}

function docker(args: string[], timeout = 120_000): string {
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout });
}

export function hostImage(image: HostImage): string {
  return `${HOST_IMAGE_REPO}:${image}`;
}

/** Null when every image exists, else what is missing. */
export function missingHostImages(): string | null {
  const missing = HOST_IMAGES.filter((i) => spawnSync('docker', ['image', 'inspect', hostImage(i)], { stdio: 'ignore' }).status !== 0);
  return missing.length ? `no ${missing.map(hostImage).join(', ')} image(s) (sh scripts/host-images.sh)` : null;
}

/** A fresh ed25519 key pair in dir (private key path returned; `.pub` beside it). */
export function makeSshKey(dir: string): string {
  const key = path.join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'd8h-test', '-f', key], { stdio: 'ignore' });
  return key;
}

function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean): void => { s.destroy(); resolve(ok); };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('data', (d) => done(d.toString().startsWith('SSH-')));
    s.once('error', () => done(false));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until systemd has finished booting and sshd answers with its banner. */
export async function waitBooted(h: ContainerHost, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = spawnSync('docker', ['exec', h.container, 'systemctl', 'is-system-running', '--wait'], { encoding: 'utf8', timeout: 30_000 });
    const state = (r.stdout ?? '').trim();
    if ((state === 'running' || state === 'degraded') && await portOpen(h.host, h.sshPort)) return;
    if (Date.now() > deadline) throw new Error(`${h.container} did not boot within ${timeoutMs / 1000}s (systemd: ${state || r.stderr?.trim()})`);
    await sleep(300);
  }
}

function ensureOfflineNetwork(): void {
  if (spawnSync('docker', ['network', 'inspect', OFFLINE_NETWORK], { stdio: 'ignore' }).status === 0) return;
  docker(['network', 'create', '--internal', '--label', 'd8h=1', OFFLINE_NETWORK]);
}

export interface StartOptions {
  /** Private key path; its `.pub` is authorized for the shape's user. */
  key: string;
  sshPort: number;
  agentPort: number;
  /** Container name suffix (default: random). */
  tag?: string;
  /** Extra `docker run -v` bind mounts (`src:dst[:ro]`). */
  volumes?: string[];
}

/** Starts one host of the shape, authorizes the key and waits for the boot to finish. */
export async function startContainerHost(shape: HostShape, opts: StartOptions): Promise<ContainerHost> {
  const spec: HostShapeSpec = HOST_SHAPES[shape];
  const container = `d8h-${shape}-${opts.tag ?? crypto.randomBytes(4).toString('hex')}`;
  const args = ['run', '-d', '--name', container, '--hostname', container, '--label', 'd8h=1',
    '--tmpfs', '/run', '--tmpfs', '/run/lock', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:ro'];
  if (spec.network === 'internal') {
    ensureOfflineNetwork();
    args.push('--network', OFFLINE_NETWORK);
  } else {
    args.push('-p', `127.0.0.1:${opts.sshPort}:22`, '-p', `127.0.0.1:${opts.agentPort}:${opts.agentPort}`);
  }
  for (const v of opts.volumes ?? []) args.push('-v', v);
  docker([...args, hostImage(spec.image)]);
  const home = spec.user === 'root' ? '/root' : `/home/${spec.user}`;
  const pub = fs.readFileSync(`${opts.key}.pub`, 'utf8');
  execFileSync('docker', ['exec', '-i', container, 'sh', '-c',
    `cat >${home}/.ssh/authorized_keys && chown ${spec.user}: ${home}/.ssh/authorized_keys && chmod 600 ${home}/.ssh/authorized_keys`],
  { input: pub, stdio: ['pipe', 'ignore', 'pipe'] });
  const hostKey = docker(['exec', container, 'cat', '/etc/ssh/ssh_host_ed25519_key.pub']).trim().split(/\s+/).slice(0, 2).join(' ');
  const ip = spec.network === 'internal'
    ? docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${OFFLINE_NETWORK}").IPAddress}}`, container]).trim()
    : '127.0.0.1';
  const h: ContainerHost = {
    shape, container, user: spec.user, host: ip,
    sshPort: spec.network === 'internal' ? 22 : opts.sshPort, agentPort: opts.agentPort, hostKey,
  };
  await waitBooted(h);
  return h;
}

/** `docker restart`: the host's reboot (systemd gets SIGRTMIN+3 and shuts down cleanly). */
export async function rebootHost(h: ContainerHost): Promise<void> {
  await execFileP('docker', ['restart', '-t', '20', h.container], { timeout: 120_000 });
  await waitBooted(h);
}

/** Runs a shell command as root inside the host (inspection only: never the code under test). */
export function rootExec(h: ContainerHost, script: string): { code: number; out: string } {
  const r = spawnSync('docker', ['exec', h.container, 'sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** What an agent install can leave on the host: unit files, crontab lines, agent processes, linger. */
export interface HostTraces {
  units: string[];
  cronLines: string[];
  processes: string[];
  linger: string[];
}

export function traces(h: ContainerHost): HostTraces {
  const lines = (s: string): string[] => s.split('\n').map((l) => l.trim()).filter(Boolean);
  return {
    units: lines(rootExec(h, 'ls -1d /etc/systemd/system/d8-agent-* /etc/systemd/system/*/d8-agent-* /root/.config/systemd/user/d8-agent-* /root/.config/systemd/user/*/d8-agent-* /home/*/.config/systemd/user/d8-agent-* /home/*/.config/systemd/user/*/d8-agent-* 2>/dev/null').out),
    cronLines: lines(rootExec(h, 'cat /var/spool/cron/crontabs/* 2>/dev/null | grep d8-agent').out),
    processes: lines(rootExec(h, "ps -eo pid=,user=,args= | grep -E 'agent-[0-9]+/(agent\\.js|run\\.sh)' | grep -v grep").out),
    linger: lines(rootExec(h, 'ls -1 /var/lib/systemd/linger 2>/dev/null').out),
  };
}

export function removeContainerHost(h: ContainerHost): void {
  spawnSync('docker', ['rm', '-f', '-v', h.container], { stdio: 'ignore' });
  // Fails (and is left) while another offline host still uses it.
  if (HOST_SHAPES[h.shape].network === 'internal') spawnSync('docker', ['network', 'rm', OFFLINE_NETWORK], { stdio: 'ignore' });
}

/** Removes every d8h- container and the offline network (after a crashed run too). */
export function removeAllContainerHosts(): void {
  const ids = spawnSync('docker', ['ps', '-aq', '--filter', 'label=d8h=1'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  if (ids.length) spawnSync('docker', ['rm', '-f', '-v', ...ids], { stdio: 'ignore' });
  spawnSync('docker', ['network', 'rm', OFFLINE_NETWORK], { stdio: 'ignore' });
}
