/**
 * The SSH connection of the command provider for one remote slave. Key material is always a Pulumi
 * secret; the host key, when configured, is checked (without it the provider accepts any key).
 */
import fs from 'fs';
import * as pulumi from '@pulumi/pulumi';
import type { types } from '@pulumi/command';
import { ConfigError, type FleetConfig, type SlaveConfig } from '../core/stack-config';

/** A dead host fails after about a minute instead of the provider's default 10 dials. */
export const DIAL_ERROR_LIMIT = 4;
/** Seconds per dial: generous for a Raspberry Pi master and a slow VPS handshake. */
export const PER_DIAL_TIMEOUT_SECONDS = 20;

const KEY_TYPE = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)$/;

/**
 * The provider wants an authorized_keys-style key (`ssh-ed25519 AAAA…`). Users paste known_hosts
 * lines or `ssh-keyscan` output (`host ssh-ed25519 AAAA…`): the leading host field is dropped.
 */
export function normalizeHostKey(raw: string, where: string, stack: string): string {
  const lines = raw.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length !== 1) {
    throw new ConfigError(`stack ${stack}: ${where} must be exactly one public host key line (got ${lines.length}); e.g. the output of \`ssh-keyscan -t ed25519 <host>\``, where);
  }
  const fields = lines[0].split(/\s+/);
  const start = KEY_TYPE.test(fields[0]) ? 0 : KEY_TYPE.test(fields[1] ?? '') ? 1 : -1;
  if (start < 0 || !fields[start + 1] || !/^[A-Za-z0-9+/]+=*$/.test(fields[start + 1])) {
    throw new ConfigError(`stack ${stack}: ${where} is not a public host key: expected "ssh-ed25519 AAAA…" (or a known_hosts line), as printed by \`ssh-keyscan -t ed25519 <host>\``, where);
  }
  return `${fields[start]} ${fields[start + 1]}`;
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
