/**
 * At master start: slaves the store has no certificate pin for take the one the deploy engine
 * recorded (agents installed by a plain `pulumi up`, whose install results never reached this
 * store). Without it the master would speak plain HTTP to a TLS agent and call it dead.
 * A pin the store already has is never replaced: the engine's record may be older. When every
 * slave has one, the engine is not asked at all (a stack read, or per swarm slave its task's logs).
 */
import type { Logger } from '../../core/logger';
import type { AgentPinStore } from '../store/agent-pins';
import type { Deployer } from './deployer';

export async function adoptRecordedPins(deployer: Deployer, pins: AgentPinStore, stack: string, slaves: readonly string[], logger: Logger): Promise<string[]> {
  if (!deployer.recordedPins) return [];
  const unpinned = slaves.filter((s) => pins.get(stack, s) === null);
  if (!unpinned.length) return [];
  let recorded: Record<string, string>;
  try {
    recorded = await deployer.recordedPins(unpinned);
  } catch (err) {
    logger.warn({ err: (err as Error).message.split('\n')[0] },
      `could not read the ${deployer.engine} engine's recorded agent certificates: agents installed outside d8 are spoken to over plain HTTP until redeployed`);
    return [];
  }
  const adopted: string[] = [];
  for (const [slave, fingerprint] of Object.entries(recorded)) {
    if (!unpinned.includes(slave) || pins.get(stack, slave) !== null) continue;
    pins.set(stack, slave, fingerprint);
    adopted.push(slave);
  }
  if (adopted.length) logger.info({ slaves: adopted }, `pinned the agent certificates the ${deployer.engine} engine recorded for ${adopted.join(', ')}`);
  return adopted;
}
