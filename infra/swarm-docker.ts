/**
 * The docker CLI on the swarm manager, over the same ssh (and options) the docker provider uses:
 * `ssh … user@host -- docker <args>`. The master needs only ssh; the manager has docker anyway.
 * Also: the platforms of the swarm's nodes, so the image is built for them (a mixed swarm is refused).
 */
import { spawn } from 'child_process';
import { shQuote } from '../core/shell-quote';
import { swarmSshOpts, type SwarmManager } from './swarm-spec';

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `docker <args>` somewhere (the manager over ssh, or this machine's engine). */
export type DockerRunner = (args: string[]) => Promise<DockerResult>;

/** ssh itself failed (exit 255): the manager is unreachable, or the login or host key was refused. */
export class SwarmManagerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SwarmManagerError';
  }
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 124 : 1), stdout, stderr });
    });
  });
}

export interface ManagerDockerOptions {
  sshKeyPath?: string;
  /** More ssh options (e.g. `-o UserKnownHostsFile=…`). */
  sshOptions?: string[];
  timeoutMs?: number;
}

export function managerDocker(manager: SwarmManager, opts: ManagerDockerOptions = {}): DockerRunner {
  return async (args) => {
    const argv = [...swarmSshOpts(opts.sshKeyPath), ...(opts.sshOptions ?? []), '-p', String(manager.port), manager.destination,
      '--', 'docker', ...args.map(shQuote)];
    const r = await run('ssh', argv, opts.timeoutMs ?? 60_000);
    if (r.code === 255) {
      throw new SwarmManagerError(`cannot reach the swarm manager ${manager.destination} port ${manager.port} over ssh: ` +
        `${r.stderr.trim().split('\n').slice(-2).join(' ') || 'ssh exited 255'} (\`ssh -p ${manager.port} ${manager.destination} docker info\` must work without a prompt)`);
    }
    return r;
  };
}

/** The docker CLI of this machine (a master that is itself the manager, and the tests). */
export function localDocker(timeoutMs = 60_000): DockerRunner {
  return (args) => run('docker', args, timeoutMs);
}

/** Node architectures as the engine reports them (uname -m), as docker platforms. */
const PLATFORM_OF_ARCH: Record<string, string> = {
  x86_64: 'linux/amd64', amd64: 'linux/amd64',
  aarch64: 'linux/arm64', arm64: 'linux/arm64',
  armv7l: 'linux/arm/v7', armhf: 'linux/arm/v7',
  armv6l: 'linux/arm/v6',
};

export interface SwarmNode {
  hostname: string;
  os: string;
  architecture: string;
}

export class SwarmPlatformError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SwarmPlatformError';
  }
}

export function dockerPlatform(node: SwarmNode): string {
  const arch = PLATFORM_OF_ARCH[node.architecture];
  if (node.os !== 'linux' || !arch) throw new SwarmPlatformError(`swarm node ${node.hostname} is ${node.os}/${node.architecture}: the agent image is built for Linux on amd64, arm64 or armv7 only`);
  return arch;
}

/**
 * The one platform every node runs. One image serves the whole global service, so a swarm of mixed
 * architectures is refused (naming the nodes of each) rather than half the nodes failing to start it.
 */
export function swarmPlatform(nodes: SwarmNode[]): string {
  if (nodes.length === 0) throw new SwarmPlatformError('the swarm has no nodes (`docker node ls` on the manager is empty)');
  const by = new Map<string, string[]>();
  for (const n of nodes) {
    const p = dockerPlatform(n);
    by.set(p, [...(by.get(p) ?? []), n.hostname]);
  }
  if (by.size > 1) {
    const list = [...by.entries()].map(([p, hosts]) => `${p}: ${hosts.join(', ')}`).join('; ');
    throw new SwarmPlatformError(`the swarm mixes platforms (${list}); swarm mode runs one image on every node: ` +
      'use nodes of one architecture, or deploy these hosts as plain slaves (no d8:swarm)');
  }
  return [...by.keys()][0];
}

/** The swarm's nodes, from the manager. */
export async function swarmNodes(docker: DockerRunner): Promise<SwarmNode[]> {
  const ids = await docker(['node', 'ls', '-q']);
  if (ids.code !== 0) throw new SwarmPlatformError(`\`docker node ls\` on the manager failed: ${ids.stderr.trim() || `exit ${ids.code}`} (is it a swarm manager? \`docker swarm init\`)`);
  const list = ids.stdout.split(/\s+/).filter(Boolean);
  if (list.length === 0) return [];
  const r = await docker(['node', 'inspect', '--format', '{{.Description.Hostname}}|{{.Description.Platform.OS}}|{{.Description.Platform.Architecture}}', ...list]);
  if (r.code !== 0) throw new SwarmPlatformError(`\`docker node inspect\` on the manager failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout.split('\n').filter((l) => l.trim()).map((l) => {
    const [hostname, os, architecture] = l.trim().split('|');
    return { hostname, os, architecture };
  });
}

/** The platform to build the swarm image for, asked from the manager (d8:swarm) over ssh. */
export async function managerPlatform(manager: SwarmManager, opts: ManagerDockerOptions = {}): Promise<string> {
  return swarmPlatform(await swarmNodes(managerDocker(manager, opts)));
}
