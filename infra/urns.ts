/**
 * The URN scheme of a slave's resources. The Pulumi program names its resources with these helpers
 * and the master's pulumi deployer targets the URNs they return, so the two can never disagree.
 */
export const PROJECT_NAME = 'd8-fleet';
export const SLAVE_HOST_TYPE = 'd8:fleet:SlaveHost';
export const REMOTE_COMMAND_TYPE = 'command:remote:Command';
export const REMOTE_COPY_TYPE = 'command:remote:CopyToRemote';
export const LOCAL_COMMAND_TYPE = 'command:local:Command';

/**
 * `<slave>-state` stands for what outlives a release on the host (the venv, images): created once,
 * its delete (a real delete only) cleans everything. `<slave>-bundle` and `<slave>-install` are
 * replaced with every release.
 */
export const slaveResourceNames = (slave: string) => ({
  component: slave,
  state: `${slave}-state`,
  bundle: `${slave}-bundle`,
  install: `${slave}-install`,
});

export interface SlaveUrns {
  component: string;
  state: string;
  bundle: string;
  install: string;
}

/** URNs of a slave's SlaveHost component and its children (`local` slaves use local commands). */
export function slaveUrns(stack: string, slave: string, opts: { local: boolean; project?: string }): SlaveUrns {
  const project = opts.project ?? PROJECT_NAME;
  const names = slaveResourceNames(slave);
  const base = `urn:pulumi:${stack}::${project}::`;
  const child = (type: string, name: string) => `${base}${SLAVE_HOST_TYPE}$${type}::${name}`;
  return {
    component: `${base}${SLAVE_HOST_TYPE}::${names.component}`,
    state: child(opts.local ? LOCAL_COMMAND_TYPE : REMOTE_COMMAND_TYPE, names.state),
    bundle: child(opts.local ? LOCAL_COMMAND_TYPE : REMOTE_COPY_TYPE, names.bundle),
    install: child(opts.local ? LOCAL_COMMAND_TYPE : REMOTE_COMMAND_TYPE, names.install),
  };
}

/**
 * Swarm mode: one SwarmAgent component owns the image (shared by every slave) and, per slave, its
 * token secret and its service (pinned to the slave's node).
 */
export const SWARM_AGENT_TYPE = 'd8:fleet:SwarmAgent';
export const DOCKER_PROVIDER_TYPE = 'pulumi:providers:docker';
export const DOCKER_IMAGE_TYPE = 'docker:index/image:Image';
export const DOCKER_SECRET_TYPE = 'docker:index/secret:Secret';
export const DOCKER_SERVICE_TYPE = 'docker:index/service:Service';
/** The image clean-up on the manager (infra/swarm-images.ts) is a local command running ssh. */
export const SWARM_IMAGES_TYPE = LOCAL_COMMAND_TYPE;

export const swarmResourceNames = () => ({
  component: 'swarm',
  provider: 'swarm-docker',
  image: 'swarm-image',
  images: 'swarm-images',
  token: (slave: string) => `swarm-token-${slave}`,
  service: (slave: string) => `swarm-service-${slave}`,
  /** The fleet token's secret and the global service of the one-service layout; a `pulumi up` now deletes them. */
  legacyToken: 'swarm-token',
  legacyService: 'swarm-service',
});

export interface SwarmUrns {
  component: string;
  provider: string;
  image: string;
  images: string;
  /** By slave name. */
  tokens: Record<string, string>;
  services: Record<string, string>;
  /** What the one-service layout left in a stack's state (the migration deletes them). */
  legacy: { token: string; service: string };
  /** Every child's URN of the SwarmAgent starts with this. */
  childPrefix: string;
}

/** URNs of the swarm-mode resources for these slaves, as the Pulumi program names them. */
export function swarmUrns(stack: string, slaves: readonly string[], opts: { project?: string } = {}): SwarmUrns {
  const project = opts.project ?? PROJECT_NAME;
  const names = swarmResourceNames();
  const base = `urn:pulumi:${stack}::${project}::`;
  const child = (type: string, name: string) => `${base}${SWARM_AGENT_TYPE}$${type}::${name}`;
  const bySlave = (type: string, name: (s: string) => string) => Object.fromEntries(slaves.map((s) => [s, child(type, name(s))]));
  return {
    component: `${base}${SWARM_AGENT_TYPE}::${names.component}`,
    provider: child(DOCKER_PROVIDER_TYPE, names.provider),
    image: child(DOCKER_IMAGE_TYPE, names.image),
    images: child(SWARM_IMAGES_TYPE, names.images),
    tokens: bySlave(DOCKER_SECRET_TYPE, names.token),
    services: bySlave(DOCKER_SERVICE_TYPE, names.service),
    legacy: { token: child(DOCKER_SECRET_TYPE, names.legacyToken), service: child(DOCKER_SERVICE_TYPE, names.legacyService) },
    childPrefix: `${base}${SWARM_AGENT_TYPE}$`,
  };
}

/**
 * What a deploy of one slave updates, in one place for the program and the master. Per-host mode:
 * that slave's SlaveHost and its children. Swarm mode (`d8:swarm`): the image is every slave's, so
 * every slave's deploy is the same update of the whole SwarmAgent (the image, its clean-up, every
 * slave's token secret and service), which the master follows with the convergence check; a forced
 * deploy of a slave (its "restart") is a forced update of that slave's service only.
 */
export type DeployUnit =
  | { kind: 'slave'; urns: SlaveUrns }
  | { kind: 'swarm'; urns: SwarmUrns };

export function deployUnit(stack: string, slave: string, opts: { swarm: boolean; local: boolean; project?: string; slaves?: readonly string[] }): DeployUnit {
  return opts.swarm
    ? { kind: 'swarm', urns: swarmUrns(stack, opts.slaves ?? [slave], { project: opts.project }) }
    : { kind: 'slave', urns: slaveUrns(stack, slave, { local: opts.local, project: opts.project }) };
}
