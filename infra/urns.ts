/**
 * The URN scheme of a slave's resources. The Pulumi program names its resources with these helpers
 * and the master's pulumi deployer targets the URNs they return, so the two can never disagree.
 */
export const PROJECT_NAME = 'd8-fleet';
export const SLAVE_HOST_TYPE = 'd8:fleet:SlaveHost';
export const REMOTE_COMMAND_TYPE = 'command:remote:Command';
export const REMOTE_COPY_TYPE = 'command:remote:CopyToRemote';
export const LOCAL_COMMAND_TYPE = 'command:local:Command';

export const slaveResourceNames = (slave: string) => ({
  component: slave,
  bundle: `${slave}-bundle`,
  install: `${slave}-install`,
});

export interface SlaveUrns {
  component: string;
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
    bundle: child(opts.local ? LOCAL_COMMAND_TYPE : REMOTE_COPY_TYPE, names.bundle),
    install: child(opts.local ? LOCAL_COMMAND_TYPE : REMOTE_COMMAND_TYPE, names.install),
  };
}
