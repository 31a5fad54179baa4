/**
 * Swarm mode as data: the manager address, the image name, and the agent's service spec: one
 * service per slave, pinned to that slave's node and holding that slave's own token as a docker
 * secret (a token taken from one node opens no other node's agent). The Pulumi program
 * (swarm-agent.ts) declares exactly this spec; the master's convergence check (master/deploy/swarm)
 * and the tests read the same values, so none of them restates the spec.
 */
import { ConfigError } from '../core/stack-config';

/** The agent image built from the bundle when no registry (`d8:swarmImage`) is configured. */
export const LOCAL_SWARM_IMAGE = 'd8-agent';
/**
 * The one global service every node's agent ran in before each slave had its own (one secret, the
 * fleet token). The Pulumi program no longer declares it: the first `pulumi up` after the change
 * deletes it (see infra/swarm-agent.ts for the order).
 */
export const LEGACY_SWARM_SERVICE_NAME = 'd8-agent';
/** Docker service names are DNS labels. */
const SERVICE_NAME_MAX = 63;

/** A slave's service on the swarm (`docker service ps d8-agent-<slave>`). */
export function swarmServiceName(slave: string): string {
  const name = `${LEGACY_SWARM_SERVICE_NAME}-${slave}`;
  if (name.length > SERVICE_NAME_MAX) {
    throw new ConfigError(`slave name "${slave}" is too long for swarm mode: its service ${name} must have at most ${SERVICE_NAME_MAX} characters (use a name of at most ${SERVICE_NAME_MAX - LEGACY_SWARM_SERVICE_NAME.length - 1})`, 'd8:slaves.name');
  }
  return name;
}
/**
 * A slave's agent key pair: a named docker volume on its node (made by the engine at the task's
 * first start), mounted at TLS_DIR. The agent makes the pair there on first start, so the private
 * key never leaves the node, and finds it again after a task restart or a new release on that node.
 */
export function tlsVolumeName(slave: string): string {
  return `${LEGACY_SWARM_SERVICE_NAME}-tls-${slave}`;
}
/** Where the task sees its TLS volume (D8_TLS_DIR). */
export const TLS_DIR = '/var/lib/d8-agent/tls';
/** File name of the token inside the task's /run/secrets/. */
export const TOKEN_SECRET_FILE = 'd8-agent-token';
/** Service labels naming the release the spec runs, and the slave the service is. */
export const COMMIT_LABEL = 'd8.commit';
export const BUNDLE_LABEL = 'd8.bundle';
export const SLAVE_LABEL = 'd8.slave';
/** Releases whose images stay on the manager for a rollback (the running one included). */
export const DEFAULT_KEEP_IMAGES = 3;

export interface SwarmManager {
  user: string;
  host: string;
  port: number;
  /** `user@host`, as ssh takes it (the port goes to -p). */
  destination: string;
}

/** `ssh://user@host[:port]` (d8:swarm) as its parts. */
export function parseSwarmManager(url: string): SwarmManager {
  const m = /^ssh:\/\/([^@\s/]+)@(\[[0-9a-fA-F:]+\]|[^:\s/]+)(?::(\d{1,5}))?\/?$/.exec(url.trim());
  const port = m?.[3] === undefined ? 22 : Number(m[3]);
  if (!m || port < 1 || port > 65535) {
    throw new ConfigError(`d8:swarm ${JSON.stringify(url)} must look like ssh://user@host or ssh://user@host:2222`, 'd8:swarm');
  }
  const host = m[2].replace(/^\[(.*)\]$/, '$1');
  return { user: m[1], host, port, destination: `${m[1]}@${host}` };
}

/** ssh options for every connection to the manager: never prompt (a prompt would hang `pulumi up`), known_hosts is checked. */
export function swarmSshOpts(sshKeyPath?: string): string[] {
  const opts = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', '-o', 'ServerAliveInterval=15'];
  if (sshKeyPath) opts.push('-i', sshKeyPath, '-o', 'IdentitiesOnly=yes');
  return opts;
}

/** The image tag names both the commit and the content, so a new release always rolls the service. */
export function swarmImageName(repository: string | undefined, commit: string, bundleHash: string): string {
  return `${repository ?? LOCAL_SWARM_IMAGE}:${commit.slice(0, 12)}-${bundleHash.slice(0, 12)}`;
}

/**
 * The agent's /api/health probe, run inside the task with the node the agent itself runs on. The
 * agent serves HTTPS with its self-signed certificate and this is its own loopback, so the probe
 * does not verify it (fetch cannot skip verification; the https module can).
 */
export function healthProbe(port: number): string[] {
  const js = `require('https').get({host:'127.0.0.1',port:${port},path:'/api/health',rejectUnauthorized:false},` +
    `r=>{r.resume();process.exit(r.statusCode===200?0:1)}).on('error',()=>process.exit(1))`;
  return ['CMD', 'node', '-e', js];
}

/**
 * The task's log driver: json-file capped at 2 x 5 MB, as the docker strategy's `docker run`
 * (agent/install/install.sh). json-file keeps `docker service logs` working, which the master reads
 * the agent's start-up line from; an engine's default keeps every line for ever.
 */
export const AGENT_LOG_DRIVER = { name: 'json-file', options: { 'max-size': '5m', 'max-file': '2' } };

export interface ServiceSpecArgs<V> {
  /** The slave this service is: it names the service. */
  slave: string;
  /** The ID of the swarm node the slave's task is pinned to (resolveSwarmNodes in swarm-docker.ts). */
  node: string;
  /** The image reference the tasks run (a name, or a digest in registry mode). */
  image: V;
  /** The slave's own token, as a docker secret. */
  secret: { id: V; name: V };
  agentPort: number;
  commit: string;
  bundleHash: string;
}

/**
 * One slave's service, in the docker provider's ServiceArgs shape: one task, on that slave's node
 * only. `V` is a plain string for readers and pulumi.Input<string> for the program.
 */
export function swarmServiceSpec<V>(a: ServiceSpecArgs<V>) {
  return {
    name: swarmServiceName(a.slave),
    mode: { replicated: { replicas: 1 } },
    labels: [{ label: COMMIT_LABEL, value: a.commit }, { label: BUNDLE_LABEL, value: a.bundleHash }, { label: SLAVE_LABEL, value: a.slave }],
    taskSpec: {
      containerSpec: {
        image: a.image,
        env: {
          D8_AGENT_PORT: String(a.agentPort),
          D8_AGENT_TOKEN_FILE: `/run/secrets/${TOKEN_SECRET_FILE}`,
          D8_INSTALL_STRATEGY: 'docker',
          D8_TLS_DIR: TLS_DIR,
          // The master reads the agent's start-up line (its certificate) as JSON from the task's logs.
          D8_LOG_FORMAT: 'json',
        },
        mounts: [{ type: 'volume', source: tlsVolumeName(a.slave), target: TLS_DIR }],
        secrets: [{ secretId: a.secret.id, secretName: a.secret.name, fileName: TOKEN_SECRET_FILE }],
        healthcheck: { tests: healthProbe(a.agentPort), interval: '15s', timeout: '5s', retries: 3, startPeriod: '20s' },
        stopGracePeriod: '20s',
      },
      logDriver: AGENT_LOG_DRIVER,
      restartPolicy: { condition: 'any', delay: '10s', window: '2m' },
      placement: { constraints: [`node.id==${a.node}`] },
      // The host's network, as the docker strategy runs it: each node's agent answers on that node's
      // own addresses at agentPort, as the master expects, and a task needs no bridge on the node.
      networksAdvanceds: [{ name: 'host' }],
    },
    // The old task first (two tasks cannot bind the same host port); a task that fails within
    // `monitor` rolls the service back to the previous spec.
    updateConfig: { parallelism: 1, delay: '10s', order: 'stop-first', failureAction: 'rollback', monitor: '30s' },
    rollbackConfig: { parallelism: 1, order: 'stop-first' },
  };
}

export type SwarmServiceSpec = ReturnType<typeof swarmServiceSpec<string>>;
