/**
 * `d8 rotate-token --restart` in swarm mode. A swarm slave's token is its service's docker secret:
 * only a deploy changes it, and the deploy restarts the slave's task (its one port on the node: the
 * old task stops before the new one starts), so the agent is unreachable for the seconds of the
 * restart, but no command is refused on the way:
 *   1. stage   the record's `current` becomes a new token, the old one `previous`, not installed:
 *              the master presents the old one, then the new one (core/slave-tokens.ts), and the
 *              first time the agent accepts the new one it forgets the old
 *   2. deploy  the pulumi deployer's swarm update: the program puts `current` in a new secret of
 *              the slave's service (infra/fleet.ts), the swarm restarts the task, the convergence
 *              check waits for every slave's service and then marks `current` installed
 * A deploy that fails leaves the staged record: the master still presents both, and the next
 * deploy (or rotation) finishes it.
 */
import { createLogger } from '../core/logger';
import { fleetSecrets } from '../core/fleet-secrets';
import { newAgentToken, type SlaveTokens } from '../core/slave-tokens';
import type { FleetConfig, SlaveConfig } from '../core/stack-config';
import { DeployCoordinator } from './deploy/coordinator';
import { createDeployer } from './deploy/select';
import { openStore } from './store';
import type { RotationResult } from './token-rotation';

/**
 * Stages a new token for the slave; returns what it replaces: its own token, the fleet token (no
 * record yet), or null when a rotation staged before is not installed yet (its token may already be
 * in the service's secret, so it is kept and the deploy finishes it).
 */
export function stageSwarmRotation(tokens: SlaveTokens, slave: string): RotationResult['replaced'] {
  const rec = tokens.read(slave);
  if (rec && !rec.installed) return null;
  tokens.write(slave, { current: newAgentToken(), previous: rec?.current ?? null, installed: false });
  return rec ? 'slave' : 'fleet';
}

export interface SwarmRotationOptions {
  /** Progress lines (the deployer's and the convergence check's). */
  say?: (line: string) => void;
}

/** Stages every slave's new token, then one Pulumi deploy of the swarm's services puts them in place. */
export async function rotateSwarmTokens(config: FleetConfig, repoDir: string, slaves: SlaveConfig[], tokens: SlaveTokens,
  o: SwarmRotationOptions = {}): Promise<RotationResult[]> {
  const replaced = slaves.map((s) => stageSwarmRotation(tokens, s.name));
  const logger = createLogger({ name: 'd8-rotate-token', level: 'warn', secrets: fleetSecrets(config) });
  const store = openStore(undefined, fleetSecrets(config));
  try {
    const deployer = await createDeployer('pulumi', {
      config, repoDir, logger, pins: store.pins.lookup(config.stack),
      onProgress: (p) => o.say?.(`[${p.slave}] ${p.phase} ${p.message}`),
    });
    const deploys = new DeployCoordinator(config.stack, deployer, store.deploys, logger, { locks: store.deployLocks, holder: 'd8 rotate-token' });
    // One update serves every slave (the deployer joins concurrent swarm deploys).
    const results = await Promise.all(slaves.map((s) => deploys.deploy(s, { reason: 'manual' })));
    return results.map((r, i) => (r.ok
      ? { slave: r.slave, ok: true, replaced: replaced[i], error: null }
      : { slave: r.slave, ok: false, replaced: null, error: `${r.slave}: the new token is staged, but the deploy that puts it in the service's secret failed (${r.errorKind ?? 'engine'}: ${r.error ?? 'unknown error'}); the master presents both tokens until \`d8 up --engine pulumi\` or d8 rotate-token --restart finishes it` }));
  } finally {
    store.close();
  }
}
