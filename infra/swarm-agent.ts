/**
 * Swarm mode: instead of one install per host, the agent runs as one global docker service (one task
 * per swarm node) declared through a docker provider that talks to the manager over SSH.
 */
import path from 'path';
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import type { BundleRef } from './bundle-ref';
import { SWARM_AGENT_TYPE, swarmResourceNames } from './urns';

/** The agent image built from the bundle when no registry (`d8:swarmImage`) is configured. */
export const LOCAL_SWARM_IMAGE = 'd8-agent';
/** Docker service name on the swarm (`docker service ps d8-agent`). */
export const SWARM_SERVICE_NAME = 'd8-agent';
/** File name of the token inside the task's /run/secrets/. */
export const TOKEN_SECRET_FILE = 'd8-agent-token';

export interface SwarmAgentArgs {
  /** `ssh://user@host[:port]` of a swarm manager. */
  manager: string;
  bundle: BundleRef;
  token: pulumi.Output<string>;
  /** The port every node publishes (host mode) and the agent listens on. */
  agentPort: number;
  /** A private key file for the docker CLI's ssh (else ssh-agent / ~/.ssh/config). */
  sshKeyPath?: string;
  baseImage?: string;
  /** Registry repository to push the image to (multi-node swarms); without it the image stays on the manager. */
  imageRepository?: string;
}

/** ssh options for the docker provider: never prompt (a prompt would hang `pulumi up`), known_hosts is checked. */
export function swarmSshOpts(sshKeyPath?: string): string[] {
  const opts = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', '-o', 'ServerAliveInterval=15'];
  if (sshKeyPath) opts.push('-i', sshKeyPath, '-o', 'IdentitiesOnly=yes');
  return opts;
}

/** The agent's /api/health probe, run inside the task with the node the agent itself runs on. */
export function healthProbe(port: number): string[] {
  const js = `fetch('http://127.0.0.1:${port}/api/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`;
  return ['CMD', 'node', '-e', js];
}

export class SwarmAgent extends pulumi.ComponentResource {
  readonly provider: docker.Provider;
  readonly image: docker.Image;
  readonly tokenSecret: docker.Secret;
  readonly service: docker.Service;
  /** The image reference the service runs. */
  readonly imageRef: pulumi.Output<string>;

  constructor(name: string, args: SwarmAgentArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super(SWARM_AGENT_TYPE, name, {}, opts);
    const names = swarmResourceNames();
    const { bundle, agentPort } = args;
    const commit = bundle.versionInfo.commit;

    this.provider = new docker.Provider(names.provider, {
      host: args.manager,
      sshOpts: swarmSshOpts(args.sshKeyPath),
    }, { parent: this });
    const onManager = { parent: this, provider: this.provider };

    // The tag names both the commit and the content, so a new release always rolls the service.
    const tag = `${commit.slice(0, 12)}-${bundle.hash.slice(0, 12)}`;
    this.image = new docker.Image(names.image, {
      imageName: `${args.imageRepository ?? LOCAL_SWARM_IMAGE}:${tag}`,
      build: {
        context: bundle.dir,
        dockerfile: path.join(bundle.dir, 'Dockerfile'),
        ...(args.baseImage ? { args: { BASE_IMAGE: args.baseImage } } : {}),
      },
      skipPush: !args.imageRepository,
    }, onManager);
    this.imageRef = args.imageRepository
      ? this.image.repoDigest
      : this.image.imageName;

    // Swarm secrets are immutable: a new token is a new (auto-named) secret, created before the old goes.
    this.tokenSecret = new docker.Secret(names.token, {
      data: pulumi.secret(args.token.apply((t) => Buffer.from(t, 'utf8').toString('base64'))),
      labels: [{ label: 'd8.role', value: 'agent-token' }],
    }, { ...onManager, additionalSecretOutputs: ['data'] });

    this.service = new docker.Service(names.service, {
      name: SWARM_SERVICE_NAME,
      mode: { global: true },
      labels: [{ label: 'd8.commit', value: commit }, { label: 'd8.bundle', value: bundle.hash }],
      taskSpec: {
        containerSpec: {
          image: this.imageRef,
          env: {
            D8_AGENT_PORT: String(agentPort),
            D8_AGENT_TOKEN_FILE: `/run/secrets/${TOKEN_SECRET_FILE}`,
            D8_INSTALL_STRATEGY: 'docker',
          },
          secrets: [{ secretId: this.tokenSecret.id, secretName: this.tokenSecret.name, fileName: TOKEN_SECRET_FILE }],
          healthcheck: { tests: healthProbe(agentPort), interval: '30s', timeout: '5s', retries: 3, startPeriod: '20s' },
          stopGracePeriod: '20s',
        },
        restartPolicy: { condition: 'any', delay: '10s', window: '2m' },
      },
      // Host mode: each node's agent answers on that node's own address, as the master expects.
      endpointSpec: { ports: [{ targetPort: agentPort, publishedPort: agentPort, publishMode: 'host', protocol: 'tcp' }] },
      // One node at a time, the old task first (two tasks cannot bind the same host port).
      updateConfig: { parallelism: 1, delay: '10s', order: 'stop-first', failureAction: 'rollback', monitor: '30s' },
      rollbackConfig: { parallelism: 1, order: 'stop-first' },
    }, { ...onManager, dependsOn: [this.image] });

    this.registerOutputs({ image: this.imageRef, service: this.service.name });
  }
}
