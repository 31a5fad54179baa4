/**
 * The docker CLI on the swarm manager, over the same ssh (and options) the docker provider uses:
 * `ssh … user@host -- docker <args>`. The master needs only ssh; the manager has docker anyway.
 * Also: the swarm's nodes: their platform, so the image is built for it (a mixed swarm is refused),
 * and which node each slave is, so its service is pinned there.
 */
import { spawn } from 'child_process';
import { shQuote } from '../core/shell-quote';
import { ConfigError, type SlaveConfig } from '../core/stack-config';
import { swarmSshOpts, type SwarmManager } from './swarm-spec';

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Ended early by DockerRunOptions (the output is a head of the whole). */
  stopped?: boolean;
}

/**
 * How much of a long output to read: `stopWhen` ends the command once what it printed so far holds
 * what the caller looks for (a task's start-up line at the head of months of logs), `maxBytes` once
 * it printed that much. Either way the result has `stopped` set and the exit code 0.
 */
export interface DockerRunOptions {
  stopWhen?: (stdout: string, stderr: string) => boolean;
  maxBytes?: number;
}

/** Runs `docker <args>` somewhere (the manager over ssh, or this machine's engine). */
export type DockerRunner = (args: string[], opts?: DockerRunOptions) => Promise<DockerResult>;

/** ssh itself failed (exit 255): the manager is unreachable, or the login or host key was refused. */
export class SwarmManagerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SwarmManagerError';
  }
}

function run(cmd: string, args: string[], timeoutMs: number, opts: DockerRunOptions = {}): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let stopped = false;
    const check = (): void => {
      if (stopped) return;
      const enough = (opts.maxBytes !== undefined && stdout.length + stderr.length >= opts.maxBytes) || !!opts.stopWhen?.(stdout, stderr);
      if (!enough) return;
      stopped = true;
      child.kill('SIGTERM');
    };
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString('utf8'); check(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); check(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (stopped) resolve({ code: 0, stdout, stderr, stopped });
      else resolve({ code: code ?? (signal ? 124 : 1), stdout, stderr });
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
  return async (args, runOpts) => {
    const argv = [...swarmSshOpts(opts.sshKeyPath), ...(opts.sshOptions ?? []), '-p', String(manager.port), manager.destination,
      '--', 'docker', ...args.map(shQuote)];
    const r = await run('ssh', argv, opts.timeoutMs ?? 60_000, runOpts);
    if (r.code === 255) {
      throw new SwarmManagerError(`cannot reach the swarm manager ${manager.destination} port ${manager.port} over ssh: ` +
        `${r.stderr.trim().split('\n').slice(-2).join(' ') || 'ssh exited 255'} (\`ssh -p ${manager.port} ${manager.destination} docker info\` must work without a prompt)`);
    }
    return r;
  };
}

/** The docker CLI of this machine (a master that is itself the manager, and the tests). */
export function localDocker(timeoutMs = 60_000, cli = 'docker'): DockerRunner {
  return (args, runOpts) => run(cli, args, timeoutMs, runOpts);
}

/** Node architectures as the engine reports them (uname -m), as docker platforms. */
const PLATFORM_OF_ARCH: Record<string, string> = {
  x86_64: 'linux/amd64', amd64: 'linux/amd64',
  aarch64: 'linux/arm64', arm64: 'linux/arm64',
  armv7l: 'linux/arm/v7', armhf: 'linux/arm/v7',
  armv6l: 'linux/arm/v6',
};

export interface SwarmNode {
  id: string;
  hostname: string;
  /** The address the node talks to the swarm from (`Status.Addr`). */
  addr: string;
  os: string;
  architecture: string;
}

export class SwarmPlatformError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SwarmPlatformError';
  }
}

export function dockerPlatform(node: Pick<SwarmNode, 'hostname' | 'os' | 'architecture'>): string {
  const arch = PLATFORM_OF_ARCH[node.architecture];
  if (node.os !== 'linux' || !arch) throw new SwarmPlatformError(`swarm node ${node.hostname} is ${node.os}/${node.architecture}: the agent image is built for Linux on amd64, arm64 or armv7 only`);
  return arch;
}

/**
 * The one platform every node runs. One image serves every slave's service, so a swarm of mixed
 * architectures is refused (naming the nodes of each) rather than half the nodes failing to start it.
 */
export function swarmPlatform(nodes: Array<Pick<SwarmNode, 'hostname' | 'os' | 'architecture'>>): string {
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
  const r = await docker(['node', 'inspect', '--format', '{{.ID}}|{{.Description.Hostname}}|{{.Status.Addr}}|{{.Description.Platform.OS}}|{{.Description.Platform.Architecture}}', ...list]);
  if (r.code !== 0) throw new SwarmPlatformError(`\`docker node inspect\` on the manager failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout.split('\n').filter((l) => l.trim()).map((l) => {
    const [id, hostname, addr, os, architecture] = l.trim().split('|');
    return { id, hostname, addr, os, architecture };
  });
}

/** `pi` of `pi.lan` (a node reports its short hostname); an IP address has none. */
const shortName = (host: string): string | null => (/^[\d.]+$|:/.test(host) || !host.includes('.') ? null : host.split('.')[0]);

const nodeList = (nodes: SwarmNode[]): string => nodes.map((n) => `${n.hostname} (${n.addr}, id ${n.id.slice(0, 12)})`).join(', ') || 'none';

/**
 * The swarm node each slave's agent runs on, by slave name (the node's ID, which the service's
 * placement constraint names). A slave names its node with `swarmNode` (the node's hostname, ID or
 * address); without it, the node whose hostname (or short hostname: `pi` for `pi.lan`) or address
 * is the slave's `host` (or `agentHost`), which is where the master looks for the agent anyway. A
 * slave on no node of the swarm, on two, or sharing a node and a port with another slave is a
 * ConfigError naming the fix.
 */
export function resolveSwarmNodes(slaves: Pick<SlaveConfig, 'name' | 'host' | 'agentHost' | 'agentPort' | 'swarmNode'>[], nodes: SwarmNode[]): Record<string, string> {
  const placed: Record<string, string> = {};
  const ports = new Map<string, string>();
  slaves.forEach((s, i) => {
    const key = `d8:slaves[${i}].swarmNode`;
    const names = s.swarmNode ? [s.swarmNode] : [...new Set([s.host, s.agentHost])];
    const hits = nodes.filter((n) => names.some((x) => x === n.hostname || x === n.addr || x === n.id || (x.length >= 12 && n.id.startsWith(x)) ||
      (!s.swarmNode && shortName(x) === n.hostname)));
    if (hits.length === 0) {
      throw new ConfigError(s.swarmNode
        ? `${key} (${s.name}) "${s.swarmNode}" is no node of the swarm (nodes: ${nodeList(nodes)}): set it to one of their hostnames`
        : `d8:slaves[${i}] (${s.name}): no swarm node has the hostname or address ${names.map((x) => `"${x}"`).join(' or ')} (nodes: ${nodeList(nodes)}): ` +
          `set ${key} to the hostname of the node its agent runs on, or add the host to the swarm (\`docker swarm join\`)`, key);
    }
    if (hits.length > 1) {
      throw new ConfigError(`d8:slaves[${i}] (${s.name}) matches ${hits.length} swarm nodes (${nodeList(hits)}): set ${key} to one node's ID`, key);
    }
    const node = hits[0];
    const other = ports.get(`${node.id}:${s.agentPort}`);
    if (other) {
      throw new ConfigError(`d8:slaves[${i}] (${s.name}) runs on swarm node ${node.hostname} like ${other}, on the same agentPort ${s.agentPort}: ` +
        `give one of them another d8:slaves[].agentPort (one port is bound once per node)`, `d8:slaves[${i}].agentPort`);
    }
    ports.set(`${node.id}:${s.agentPort}`, s.name);
    placed[s.name] = node.id;
  });
  return placed;
}

/** The swarm's nodes, asked from the manager (d8:swarm) over ssh. */
export async function managerNodes(manager: SwarmManager, opts: ManagerDockerOptions = {}): Promise<SwarmNode[]> {
  return swarmNodes(managerDocker(manager, opts));
}
