/**
 * Swarm mode: instead of one install per host, each slave's agent runs as its own docker service,
 * pinned to the slave's swarm node and holding the slave's own token as a docker secret, declared
 * through a docker provider that talks to the manager over SSH; one image serves them all. The spec
 * itself is data in swarm-spec.ts. `pulumi up` returns once the swarm accepted the new specs, not
 * when every node runs them: the master checks convergence afterwards (master/deploy/swarm).
 *
 * From the one-service layout (a global `d8-agent` service holding the fleet token): the program no
 * longer declares that service, so the up deletes it, but Pulumi deletes what the program dropped
 * only after it created what it added. The new tasks start while the old ones still hold the agent
 * port on every node: each exits ("cannot listen … EADDRINUSE") and the swarm restarts it after the
 * restart policy's delay (10 s, no attempt limit) until the old task is gone (the provider's delete
 * waits for its containers), so every node's agent is back within about that delay of the up's end,
 * and the old agent served until then. The convergence check then waits for every slave's service.
 */
import path from 'path';
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import * as command from '@pulumi/command';
import type { BundleRef } from './bundle-ref';
import { imageCleanupArgs, imageCleanupCommand, IMAGE_CLEANUP_SCRIPT } from './swarm-images';
import { stageSwarmContext } from './swarm-context';
import {
  DEFAULT_KEEP_IMAGES, LOCAL_SWARM_IMAGE, parseSwarmManager, SLAVE_LABEL, swarmImageName, swarmServiceSpec, swarmSshOpts,
} from './swarm-spec';
import { SWARM_AGENT_TYPE, swarmResourceNames } from './urns';

export interface SwarmAgentArgs {
  /** `ssh://user@host[:port]` of a swarm manager. */
  manager: string;
  bundle: BundleRef;
  /** Every slave's agent: its own token, its node (a swarm node ID: resolveSwarmNodes) and its port. */
  slaves: Array<{ name: string; token: pulumi.Output<string>; node: string; agentPort: number }>;
  /** A private key file for the docker CLI's ssh (else ssh-agent / ~/.ssh/config). */
  sshKeyPath?: string;
  baseImage?: string;
  /** Registry repository to push the image to (multi-node swarms); without it the image stays on the manager. */
  imageRepository?: string;
  /** `linux/<arch>` every node runs (master/deploy/swarm/platform.ts); the image is built for it. */
  platform?: string;
  /** Releases whose images stay on the manager (default DEFAULT_KEEP_IMAGES). */
  keepImages?: number;
  /** Where the build context is staged (default: the checkout's build/swarm-context). */
  stageRoot?: string;
}

export class SwarmAgent extends pulumi.ComponentResource {
  readonly provider: docker.Provider;
  readonly image: docker.Image;
  readonly images: command.local.Command;
  /** By slave name. */
  readonly tokenSecrets: Record<string, docker.Secret> = {};
  readonly services: Record<string, docker.Service> = {};
  /** The image reference the service runs. */
  readonly imageRef: pulumi.Output<string>;

  constructor(name: string, args: SwarmAgentArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super(SWARM_AGENT_TYPE, name, {}, opts);
    const names = swarmResourceNames();
    const { bundle } = args;
    const commit = bundle.versionInfo.commit;
    const manager = parseSwarmManager(args.manager);
    const repository = args.imageRepository ?? LOCAL_SWARM_IMAGE;

    this.provider = new docker.Provider(names.provider, {
      host: args.manager,
      sshOpts: swarmSshOpts(args.sshKeyPath),
    }, { parent: this });
    const onManager = { parent: this, provider: this.provider };

    const context = stageSwarmContext(bundle, args.stageRoot);
    this.image = new docker.Image(names.image, {
      imageName: swarmImageName(args.imageRepository, commit, bundle.hash),
      build: {
        context,
        dockerfile: path.join(context, 'Dockerfile'),
        ...(args.baseImage ? { args: { BASE_IMAGE: args.baseImage } } : {}),
        ...(args.platform ? { platform: args.platform } : {}),
      },
      skipPush: !args.imageRepository,
    }, onManager);
    this.imageRef = args.imageRepository
      ? this.image.repoDigest
      : this.image.imageName;

    // Runs after every new image (its environment names it) and, on delete, after the service is gone.
    const keep = args.keepImages ?? DEFAULT_KEEP_IMAGES;
    this.images = new command.local.Command(names.images, {
      create: imageCleanupCommand(manager, args.sshKeyPath, imageCleanupArgs('prune', repository, keep)),
      delete: imageCleanupCommand(manager, args.sshKeyPath, imageCleanupArgs('remove-all', repository, keep)),
      stdin: IMAGE_CLEANUP_SCRIPT,
      environment: { D8_SWARM_IMAGE: this.image.imageName },
    }, { parent: this, dependsOn: [this.image] });

    for (const slave of args.slaves) {
      // Swarm secrets are immutable: a new token is a new (auto-named) secret, created before the old goes.
      const secret = new docker.Secret(names.token(slave.name), {
        data: pulumi.secret(slave.token.apply((t) => Buffer.from(t, 'utf8').toString('base64'))),
        labels: [{ label: 'd8.role', value: 'agent-token' }, { label: SLAVE_LABEL, value: slave.name }],
      }, { ...onManager, additionalSecretOutputs: ['data'] });
      this.tokenSecrets[slave.name] = secret;
      this.services[slave.name] = new docker.Service(names.service(slave.name), swarmServiceSpec<pulumi.Input<string>>({
        slave: slave.name,
        node: slave.node,
        image: this.imageRef,
        secret: { id: secret.id, name: secret.name },
        agentPort: slave.agentPort,
        commit,
        bundleHash: bundle.hash,
      }), { ...onManager, dependsOn: [this.image, this.images] });
    }

    this.registerOutputs({ image: this.imageRef, services: pulumi.all(Object.fromEntries(Object.entries(this.services).map(([n, svc]) => [n, svc.name]))) });
  }
}
