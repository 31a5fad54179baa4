/**
 * Every secret a fleet's config resolves to, gathered once, so each log, build log, message and
 * error of a process is scrubbed with the same list (the agent token alone is not enough: the SSH
 * key, the Telegram token and the environment's secrets must go too).
 */
import fs from 'fs';
import { Redactor, environmentSecrets, type SecretSource } from './redact';
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

/**
 * The slaves' recorded tokens as they are now: `d8 rotate-token` (another process) writes new ones
 * while a daemon runs, and its logs and alerts must scrub those too. Read again when the token
 * directory changed; a change as recent as the file clock's granularity is read again next time.
 */
export function slaveTokenSource(config: FleetConfig, env: NodeJS.ProcessEnv = process.env): SecretSource {
  const seen = new Set<string>();
  let dir: string;
  try {
    dir = SlaveTokens.forEnv(config.stack, env).dir;
  } catch {
    return () => seen;
  }
  let settled: number | null = null;
  return () => {
    let mtime: number;
    try {
      mtime = fs.statSync(dir).mtimeMs;
    } catch {
      return seen;
    }
    if (mtime === settled) return seen;
    for (const t of slaveTokenSecrets(config, env)) seen.add(t);
    settled = Date.now() - mtime > 1000 ? mtime : null;
    return seen;
  };
}

/** Scrubs every fleet secret, including slave tokens rotated after it was made. */
export function fleetRedactor(config: FleetConfig, env: NodeJS.ProcessEnv = process.env): Redactor {
  return new Redactor(fleetSecrets(config, env), [slaveTokenSource(config, env)]);
}
