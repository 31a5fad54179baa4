/**
 * The SSH test hosts (scripts/test-hosts.sh) as seen by the system tests: the tier check, the env
 * file, fleet configs pointing at the hosts, free agent ports, and root-side inspection of what an
 * install left on a host (processes, files, containers), independent of the code under test.
 */
import { execFileSync, spawnSync } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import type { TierCheck } from '../../support/tier';
import { resolveFleetConfig, type FleetConfig } from '../../../core/stack-config';
import type { Strategy } from '../../../core/protocol';

export const REPO = path.resolve(__dirname, '..', '..', '..');
const HARNESS = path.join(REPO, 'scripts', 'test-hosts.sh');
export const BASE_IMAGE = 'd8-base:bookworm';

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export const systemTier: TierCheck = {
  tier: 'system',
  enable: 'run `sudo sh scripts/ci-setup-system.sh` (sshd test hosts, python3-venv, docker engine, d8-base image) and run jest as root',
  missing: () => {
    if (process.getuid?.() !== 0) return 'not running as root (the test hosts are unix users with their own sshd)';
    if (!fs.existsSync('/usr/sbin/sshd')) return 'no /usr/sbin/sshd (apt-get install openssh-server)';
    if (!run('unshare', ['--version']).ok) return 'no unshare (util-linux)';
    if (!fs.existsSync('/usr/bin/python3')) return 'no /usr/bin/python3 (apt-get install python3 python3-venv)';
    if (!run('docker', ['info']).ok) return 'no usable Docker engine (apt-get install docker.io; start dockerd)';
    if (!run('docker', ['image', 'inspect', BASE_IMAGE]).ok) return `no ${BASE_IMAGE} image (sh scripts/docker-base-image.sh)`;
    return null;
  },
};

export type Shape = 'docker' | 'venv' | 'native' | 'broken';
export const SHAPES: Shape[] = ['docker', 'venv', 'native', 'broken'];

export interface TestHost {
  shape: Shape;
  host: string;
  port: number;
  user: string;
  home: string;
  expect: Strategy | null;
  hostKey: string;
}

export interface TestHosts {
  key: string;
  hosts: Record<Shape, TestHost>;
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
  }
  return env;
}

/** Starts the hosts (idempotent) and reads the env file the harness prints. */
export function upTestHosts(): TestHosts {
  const out = execFileSync('sh', [HARNESS, 'up'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 });
  const env = parseEnv(out);
  const hosts = {} as Record<Shape, TestHost>;
  for (const s of SHAPES) {
    const H = s.toUpperCase();
    const user = env[`D8_TEST_${H}_USER`];
    hosts[s] = {
      shape: s,
      host: env[`D8_TEST_${H}_HOST`],
      port: Number(env[`D8_TEST_${H}_PORT`]),
      user,
      home: `/home/${user}`,
      expect: env[`D8_TEST_${H}_EXPECT`] === 'none' ? null : (env[`D8_TEST_${H}_EXPECT`] as Strategy),
      hostKey: env[`D8_TEST_${H}_HOSTKEY`],
    };
    if (!hosts[s].host || !user) throw new Error(`test-hosts env has no entry for ${s}:\n${out}`);
  }
  return { key: env.D8_TEST_KEY, hosts };
}

/** A free TCP port on all interfaces (the agents listen on 0.0.0.0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '0.0.0.0', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

export const randomToken = (): string => crypto.randomBytes(32).toString('base64url');

export interface SlaveSpec {
  name: string;
  host: TestHost;
  agentPort: number;
  strategies?: Strategy[];
}

export function fleetConfig(th: TestHosts, slaves: SlaveSpec[], extra: Record<string, unknown> = {}): FleetConfig {
  return resolveFleetConfig({
    slaves: slaves.map((s) => ({
      name: s.name, host: s.host.host, user: s.host.user, sshPort: s.host.port, agentPort: s.agentPort,
      hostKey: s.host.hostKey, ...(s.strategies ? { strategies: s.strategies } : {}),
    })),
    sshKeyPath: th.key,
    agentToken: randomToken(),
    installAttempts: 3,
    installDelaySeconds: 1,
    baseImage: BASE_IMAGE,
    ...extra,
  }, { stack: 'systest', env: {} });
}

/** pids of agent processes for `port` run by `user` (any strategy but docker). */
export function agentPids(user: string, port: number): number[] {
  const r = spawnSync('ps', ['-o', 'pid=,args=', '-u', user], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n')
    .filter((l) => l.includes(`agent-${port}/agent.js`))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

/** Every process of a test user (after an uninstall: none may be left). */
export function userProcesses(user: string): string[] {
  const r = spawnSync('ps', ['-o', 'pid=,args=', '-u', user], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
}

export function containersForPort(port: number): string[] {
  const out = execFileSync('docker', ['ps', '-a', '--format', '{{.Names}}', '--filter', `label=d8.agent.port=${port}`], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean);
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Every file under dir (for "no secret anywhere in the build logs"). */
export function readAll(dir: string): string {
  if (!fs.existsSync(dir)) return '';
  return fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).join('\n');
}

/** Root-side: uninstalls every agent a test user has (the same uninstall.sh), for afterAll. */
export function uninstallAsUser(repoDir: string, user: string): void {
  // A world-readable copy: the checkout may live where the test users cannot read (e.g. /root).
  const copy = path.join(os.tmpdir(), `d8-uninstall-${crypto.randomBytes(6).toString('hex')}.sh`);
  fs.copyFileSync(path.join(repoDir, 'agent', 'install', 'uninstall.sh'), copy);
  fs.chmodSync(copy, 0o644);
  try {
    spawnSync('runuser', ['-u', user, '--', 'env', `HOME=/home/${user}`, 'PATH=/usr/local/bin:/usr/bin:/bin',
      'sh', copy, '--all'], { encoding: 'utf8', timeout: 120000, cwd: '/' });
  } finally {
    fs.rmSync(copy, { force: true });
  }
}
