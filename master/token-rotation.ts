/**
 * `d8 rotate-token`: gives a slave's agent a new token of its own without a moment where the master
 * holds a token the agent refuses:
 *   1. add      the agent accepts [old, new] (POST /api/token, authorized by the old one)
 *   2. switch   the master's record becomes { current: new, previous: old }: it presents the new one
 *   3. retire   the agent accepts only the new one (authorized by the new one)
 *   4. commit   the record forgets the old one
 * Each step is kept before the next starts, so an interrupted rotation is finished by the next run.
 * An agent that still has the fleet token (deployed before per-slave tokens) gets its own here.
 */
import { newAgentToken, type SlaveTokens } from '../core/slave-tokens';
import type { FleetConfig, SlaveConfig } from '../core/stack-config';
import { AgentCallError, type AgentClient } from './agent-client';

export interface RotationResult {
  slave: string;
  ok: boolean;
  /** What the agent had before: its own token, or the fleet token (first rotation of an old agent). */
  replaced: 'slave' | 'fleet' | null;
  error: string | null;
}

export async function rotateSlaveToken(
  config: Pick<FleetConfig, 'stack' | 'agentToken'>, slave: SlaveConfig, client: AgentClient, tokens: SlaveTokens,
): Promise<RotationResult> {
  const name = slave.name;
  const failed = (error: string): RotationResult => ({ slave: name, ok: false, replaced: null, error: `${name}: ${error}` });
  try {
    const pending = tokens.read(name);
    if (pending?.installed && pending.previous) {
      // A rotation stopped after its switch: the agent accepts both; finish it first.
      await client.changeToken(slave, pending.current, { action: 'retire' });
      tokens.write(name, { current: pending.current, previous: null, installed: true });
    }
    const next = newAgentToken();
    let old: string | null = null;
    let refusal: unknown = null;
    for (const candidate of tokens.candidates(name, config.agentToken)) {
      try {
        await client.changeToken(slave, candidate, { action: 'add', token: next });
        old = candidate;
        break;
      } catch (err) {
        if (!(err instanceof AgentCallError) || err.status !== 401) throw err;
        refusal = err;
      }
    }
    if (old === null) {
      return failed(`the agent refuses every token the master has (${(refusal as Error | null)?.message ?? 'no token'}): redeploy it (d8 up --force --slave ${name})`);
    }
    tokens.write(name, { current: next, previous: old, installed: true });
    try {
      await client.changeToken(slave, next, { action: 'retire' });
    } catch (err) {
      return failed(`the new token is in use, but the agent still accepts the old one too (${(err as Error).message}): run d8 rotate-token ${name} again to finish`);
    }
    tokens.write(name, { current: next, previous: null, installed: true });
    return { slave: name, ok: true, replaced: old === config.agentToken ? 'fleet' : 'slave', error: null };
  } catch (err) {
    return failed((err as Error).message);
  }
}
