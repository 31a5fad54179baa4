/**
 * Which token the master presents to a slave's agent (core/slave-tokens.ts says in what order). A
 * 401 moves on to the next candidate; when all are refused the record is read again once, since a
 * rotation in another process (`d8 rotate-token`) may have moved on in between. An agent that
 * accepts its own token not yet marked installed (a `d8 bootstrap-script` install) gets it marked,
 * so the master stops presenting the fleet token first.
 */
import { SlaveTokens } from '../core/slave-tokens';
import { ConfigError, type FleetConfig } from '../core/stack-config';
import { AgentCallError } from './agent-client';

export function slaveTokens(config: Pick<FleetConfig, 'stack'>, env: NodeJS.ProcessEnv = process.env): SlaveTokens {
  return SlaveTokens.forEnv(config.stack, env);
}

export async function withAgentToken<T>(
  config: Pick<FleetConfig, 'stack' | 'agentToken'>,
  slave: string,
  call: (token: string) => Promise<T>,
  tokens: SlaveTokens = slaveTokens(config),
): Promise<T> {
  const tried = new Set<string>();
  let lastRefusal: unknown = null;
  for (let round = 0; round < 2; round++) {
    const candidates = tokens.candidates(slave, config.agentToken).filter((t) => !tried.has(t));
    if (round === 0 && candidates.length === 0) {
      throw new ConfigError(`stack ${config.stack}: no agent token for ${slave}: set the secret d8:agentToken (or D8_AGENT_TOKEN), or deploy ${slave} to give it its own`, 'd8:agentToken');
    }
    for (const token of candidates) {
      tried.add(token);
      try {
        const answer = await call(token);
        tokens.confirmInstalled(slave, token);
        return answer;
      } catch (err) {
        if (!(err instanceof AgentCallError) || err.status !== 401) throw err;
        lastRefusal = err;
      }
    }
  }
  throw lastRefusal;
}

/** Whether the master has a token to present to the slave's agent (its own, or the fleet token). */
export function hasAgentToken(config: Pick<FleetConfig, 'stack' | 'agentToken'>, slave: string, tokens: SlaveTokens = slaveTokens(config)): boolean {
  try {
    return tokens.candidates(slave, config.agentToken).length > 0;
  } catch {
    return true; // an unreadable record: the attempt reports what to do about it
  }
}
