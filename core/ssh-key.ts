/**
 * The fleet's SSH private key, for both engines: `d8:sshPrivateKey` (or D8_SSH_PRIVATE_KEY) wins
 * over the file at `d8:sshKeyPath` (or D8_SSH_KEY_PATH). A missing, unreadable or public key file is
 * a ConfigError naming the fix; the key text never appears in a message.
 */
import fs from 'fs';
import { ConfigError, type FleetConfig } from './stack-config';

export interface SshPrivateKey {
  /** The key text, ending in a newline (ssh parsers need it). */
  text: string;
  /** Where it came from, for messages (never the key itself). */
  description: string;
}

export function loadSshPrivateKey(config: Pick<FleetConfig, 'stack' | 'sshPrivateKey' | 'sshKeyPath'>): SshPrivateKey {
  if (config.sshPrivateKey && config.sshPrivateKey.trim() !== '') {
    // Keys pasted through `pulumi config set` often lose their final newline.
    const text = config.sshPrivateKey.endsWith('\n') ? config.sshPrivateKey : `${config.sshPrivateKey}\n`;
    return { text, description: '(from D8_SSH_PRIVATE_KEY / d8:sshPrivateKey)' };
  }
  if (!config.sshKeyPath) {
    throw new ConfigError(`stack ${config.stack}: no SSH key is configured: set d8:sshKeyPath, the secret d8:sshPrivateKey, or D8_SSH_KEY_PATH / D8_SSH_PRIVATE_KEY`, 'd8:sshKeyPath');
  }
  let text: string;
  try {
    text = fs.readFileSync(config.sshKeyPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`stack ${config.stack}: d8:sshKeyPath ${config.sshKeyPath} cannot be read (${code}); point it (or D8_SSH_KEY_PATH) at a private key file, or set the secret d8:sshPrivateKey`, 'd8:sshKeyPath');
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new ConfigError(`stack ${config.stack}: d8:sshKeyPath ${config.sshKeyPath} is not a private key (no "BEGIN … PRIVATE KEY" line; did you give the .pub file?)`, 'd8:sshKeyPath');
  }
  return { text, description: config.sshKeyPath };
}
