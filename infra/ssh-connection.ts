/**
 * The SSH connection of the command provider for one remote slave. Key material is always a Pulumi
 * secret; the host key, when configured, is checked (without it the provider accepts any key).
 */
import fs from 'fs';
import * as pulumi from '@pulumi/pulumi';
import type { types } from '@pulumi/command';
import { HostKeyFormatError, parseHostKey } from '../core/host-key';
import { ConfigError, type FleetConfig, type SlaveConfig } from '../core/stack-config';

/** A dead host fails after about a minute instead of the provider's default 10 dials. */
export const DIAL_ERROR_LIMIT = 4;
/** Seconds per dial: generous for a Raspberry Pi master and a slow VPS handshake. */
export const PER_DIAL_TIMEOUT_SECONDS = 20;

/**
 * The provider wants an authorized_keys-style key (`ssh-ed25519 AAAA…`). Users paste known_hosts
 * lines or `ssh-keyscan` output (`host ssh-ed25519 AAAA…`): core/host-key.ts reads both.
 */
export function normalizeHostKey(raw: string, where: string, stack: string): string {
  try {
    return parseHostKey(raw).authorizedKey;
  } catch (err) {
    if (err instanceof HostKeyFormatError) throw new ConfigError(`stack ${stack}: ${where} ${err.message}`, where);
    throw err;
  }
}

/** The private key text: `d8:sshPrivateKey` (or D8_SSH_PRIVATE_KEY) wins over the file at `d8:sshKeyPath`. */
export function sshPrivateKeyMaterial(config: FleetConfig): string {
  if (config.sshPrivateKey && config.sshPrivateKey.trim() !== '') {
    // Keys pasted through `pulumi config set` often lose their final newline, which ssh parsers need.
    return config.sshPrivateKey.endsWith('\n') ? config.sshPrivateKey : `${config.sshPrivateKey}\n`;
  }
  if (!config.sshKeyPath) {
    throw new ConfigError(`stack ${config.stack}: no SSH key is configured: set d8:sshKeyPath, the secret d8:sshPrivateKey, or D8_SSH_KEY_PATH / D8_SSH_PRIVATE_KEY`, 'd8:sshKeyPath');
  }
  let text: string;
  try {
    text = fs.readFileSync(config.sshKeyPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`stack ${config.stack}: d8:sshKeyPath ${config.sshKeyPath} cannot be read (${code}); point it at a private key file, or set the secret d8:sshPrivateKey`, 'd8:sshKeyPath');
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new ConfigError(`stack ${config.stack}: d8:sshKeyPath ${config.sshKeyPath} is not a private key (no "BEGIN … PRIVATE KEY" line; did you give the .pub file?)`, 'd8:sshKeyPath');
  }
  return text;
}

export function slaveConnection(stack: string, slave: SlaveConfig, index: number, privateKey: pulumi.Output<string>): types.input.remote.ConnectionArgs {
  return {
    host: slave.host,
    port: slave.sshPort,
    user: slave.user,
    privateKey,
    ...(slave.hostKey ? { hostKey: normalizeHostKey(slave.hostKey, `d8:slaves[${index}] (${slave.name}).hostKey`, stack) } : {}),
    dialErrorLimit: DIAL_ERROR_LIMIT,
    perDialTimeout: PER_DIAL_TIMEOUT_SECONDS,
  };
}
