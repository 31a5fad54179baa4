/**
 * Every secret a fleet's config resolves to, gathered once, so each log, build log, message and
 * error of a process is scrubbed with the same list (the agent token alone is not enough: the SSH
 * key, the Telegram token and the environment's secrets must go too).
 */
import fs from 'fs';
import { Redactor, environmentSecrets } from './redact';
import type { FleetConfig } from './stack-config';

export function fleetSecrets(config: FleetConfig, env: NodeJS.ProcessEnv = process.env): string[] {
  let keyFile: string | undefined;
  try {
    keyFile = config.sshKeyPath ? fs.readFileSync(config.sshKeyPath, 'utf8') : undefined;
  } catch { /* unreadable key: nothing of it can leak */ }
  return [config.agentToken, config.sshPrivateKey, keyFile, config.telegramToken, ...environmentSecrets(env)]
    .filter((s): s is string => !!s);
}

export function fleetRedactor(config: FleetConfig, env: NodeJS.ProcessEnv = process.env): Redactor {
  return new Redactor(fleetSecrets(config, env));
}
