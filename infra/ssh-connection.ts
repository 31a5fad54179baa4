/**
 * The SSH connection of the command provider for one remote slave. Key material is always a Pulumi
 * secret. The host key is required of the server: the stack's `hostKey` when set, else the one
 * recorded in D8_HOME/known_hosts on first use (core/known-hosts.ts; the master's pre-flight
 * records it before `pulumi up`). A host with neither is accepted as the provider does, with a warning.
 */
import * as pulumi from '@pulumi/pulumi';
import type { types } from '@pulumi/command';
import { HostKeyFormatError, parseHostKey } from '../core/host-key';
import type { KnownHosts } from '../core/known-hosts';
import { ConfigError, type SlaveConfig } from '../core/stack-config';

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

/** The host key the provider must require of the slave's sshd: pinned in the stack, else recorded; undefined when neither. */
export function expectedHostKey(stack: string, slave: SlaveConfig, index: number, knownHosts?: KnownHosts): string | undefined {
  if (slave.hostKey) return normalizeHostKey(slave.hostKey, `d8:slaves[${index}] (${slave.name}).hostKey`, stack);
  return knownHosts?.lookup(slave.host, slave.sshPort)?.key.authorizedKey;
}

export function slaveConnection(stack: string, slave: SlaveConfig, index: number, privateKey: pulumi.Output<string>, knownHosts?: KnownHosts): types.input.remote.ConnectionArgs {
  const hostKey = expectedHostKey(stack, slave, index, knownHosts);
  return {
    host: slave.host,
    port: slave.sshPort,
    user: slave.user,
    privateKey,
    ...(hostKey ? { hostKey } : {}),
    dialErrorLimit: DIAL_ERROR_LIMIT,
    perDialTimeout: PER_DIAL_TIMEOUT_SECONDS,
  };
}
