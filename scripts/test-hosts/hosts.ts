/**
 * The SSH test hosts (scripts/test-hosts.sh) as seen from TypeScript (system tests, bench:deploy):
 * the env file, fleet configs pointing at the hosts, free agent ports, and root-side inspection of
 * what an install left on a host (processes, files, containers), independent of the code under test.
 */
import { execFileSync, spawnSync } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import { resolveFleetConfig, type FleetConfig } from '../../core/stack-config';
import type { Strategy } from '../../core/protocol';

/** The repository root, from scripts/test-hosts/ and dist/scripts/test-hosts/ alike. */
export const REPO = ((): string => {
  let d = __dirname;
  while (!fs.existsSync(path.join(d, 'scripts', 'test-hosts.sh')) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
})();
const HARNESS = path.join(REPO, 'scripts', 'test-hosts.sh');
export const BASE_IMAGE = 'd8-base:bookworm';

export type Shape = 'docker' | 'venv' | 'native' | 'broken' | 'venv2' | 'venv3' | 'nonode' | 'musl';
/** The four shapes of the fallback order (venv2/venv3 are extra venv-shaped hosts for the bench). */
export const SHAPES: Shape[] = ['docker', 'venv', 'native', 'broken'];
/** nonode: no node (the runtime is pushed); musl: no node and a musl libc (refused). */
export const ALL_HOSTS: Shape[] = [...SHAPES, 'venv2', 'venv3', 'nonode', 'musl'];

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
  for (const s of ALL_HOSTS) {
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

const handedOut = new Set<number>();

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
  });
}

/**
 * A free TCP port for an agent (they listen on 0.0.0.0), never the same twice in one process.
 * Picked below the kernel's ephemeral range (32768+): the agent binds it seconds later, and in
 * between any other process's listen(0) or outgoing connection could take an ephemeral port.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + crypto.randomInt(12000);
    if (!handedOut.has(port) && await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
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
    // No runtime mirror unless a test serves one (tests/support/node-mirror.ts): a host without node
    // stays without it, whatever network the machine has.
    nodeDistUrl: 'http://127.0.0.1:9/no-mirror',
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

/**
 * Root-side: uninstalls every agent a test user has (the same uninstall.sh), for afterAll; with
 * `port`, only that agent (other suites share the users).
 */
export function uninstallAsUser(repoDir: string, user: string, port?: number): void {
  // A world-readable copy: the checkout may live where the test users cannot read (e.g. /root).
  const copy = path.join(os.tmpdir(), `d8-uninstall-${crypto.randomBytes(6).toString('hex')}.sh`);
  fs.copyFileSync(path.join(repoDir, 'agent', 'install', 'uninstall.sh'), copy);
  fs.chmodSync(copy, 0o644);
  try {
    spawnSync('runuser', ['-u', user, '--', 'env', `HOME=/home/${user}`, 'PATH=/usr/local/bin:/usr/bin:/bin',
      'sh', copy, ...(port === undefined ? ['--all'] : ['--port', String(port)])], { encoding: 'utf8', timeout: 120000, cwd: '/' });
  } finally {
    fs.rmSync(copy, { force: true });
  }
}
