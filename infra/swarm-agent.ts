/**
 * Swarm mode: instead of one install per host, the agent runs as one global docker service (one task
 * per swarm node) declared through a docker provider that talks to the manager over SSH. The spec
 * itself is data in swarm-spec.ts. `pulumi up` returns once the swarm accepted the new spec, not when
 * every node runs it: the master checks convergence afterwards (master/deploy/swarm).
 */
import path from 'path';
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import * as command from '@pulumi/command';
import type { BundleRef } from './bundle-ref';
import { imageCleanupArgs, imageCleanupCommand, IMAGE_CLEANUP_SCRIPT } from './swarm-images';
import { stageSwarmContext } from './swarm-context';
import {
  DEFAULT_KEEP_IMAGES, LOCAL_SWARM_IMAGE, parseSwarmManager, swarmImageName, swarmServiceSpec, swarmSshOpts,
} from './swarm-spec';
import { SWARM_AGENT_TYPE, swarmResourceNames } from './urns';

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
  readonly tokenSecret: docker.Secret;
  readonly service: docker.Service;
  /** The image reference the service runs. */
  readonly imageRef: pulumi.Output<string>;

  constructor(name: string, args: SwarmAgentArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super(SWARM_AGENT_TYPE, name, {}, opts);
    const names = swarmResourceNames();
    const { bundle, agentPort } = args;
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

    // Swarm secrets are immutable: a new token is a new (auto-named) secret, created before the old goes.
    this.tokenSecret = new docker.Secret(names.token, {
      data: pulumi.secret(args.token.apply((t) => Buffer.from(t, 'utf8').toString('base64'))),
      labels: [{ label: 'd8.role', value: 'agent-token' }],
    }, { ...onManager, additionalSecretOutputs: ['data'] });

    this.service = new docker.Service(names.service, swarmServiceSpec<pulumi.Input<string>>({
      image: this.imageRef,
      secret: { id: this.tokenSecret.id, name: this.tokenSecret.name },
      agentPort,
      commit,
      bundleHash: bundle.hash,
    }), { ...onManager, dependsOn: [this.image, this.images] });

    this.registerOutputs({ image: this.imageRef, service: this.service.name });
  }
}
