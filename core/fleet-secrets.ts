/**
 * Every secret a fleet's config resolves to, gathered once, so each log, build log, message and
 * error of a process is scrubbed with the same list (the agent token alone is not enough: the SSH
 * key, the Telegram token and the environment's secrets must go too).
 */
import fs from 'fs';
import { Redactor, environmentSecrets } from './redact';
import { SlaveTokens } from './slave-tokens';
import type { FleetConfig } from './stack-config';

export function fleetSecrets(config: FleetConfig, env: NodeJS.ProcessEnv = process.env): string[] {
  let keyFile: string | undefined;
  try {
    keyFile = config.sshKeyPath ? fs.readFileSync(config.sshKeyPath, 'utf8') : undefined;
  } catch { /* unreadable key: nothing of it can leak */ }
  return [config.agentToken, config.sshPrivateKey, keyFile, config.telegramToken, ...slaveTokenSecrets(config, env), ...environmentSecrets(env)]
    .filter((s): s is string => !!s);
}

/** Each slave's own agent tokens (current and, during a rotation, previous) as recorded in D8_HOME. */
function slaveTokenSecrets(config: FleetConfig, env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  try {
    const tokens = SlaveTokens.forEnv(config.stack, env);
    for (const s of config.slaves) {
      try {
        const rec = tokens.read(s.name);
        if (rec) out.push(rec.current, ...(rec.previous ? [rec.previous] : []));
      } catch { /* an unreadable record holds nothing that can leak */ }
    }
  } catch { /* a stack name that cannot name a token directory has no records */ }
  return out;
}

export function fleetRedactor(config: FleetConfig, env: NodeJS.ProcessEnv = process.env): Redactor {
  return new Redactor(fleetSecrets(config, env));
}
