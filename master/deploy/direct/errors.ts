/** Why a direct deploy could not even start talking to a slave. Messages name the fix. */
import type { DeployErrorKind } from '../../../core/deploy-result';

export type ConnectFailure = 'refused' | 'timeout' | 'unreachable' | 'unknown-host' | 'auth' | 'host-key' | 'key' | 'other';

export class SlaveConnectError extends Error {
  constructor(message: string, readonly failure: ConnectFailure) {
    super(message);
    this.name = 'SlaveConnectError';
  }
}

export class RemoteCommandError extends Error {
  constructor(message: string, readonly exitCode: number | null) {
    super(message);
    this.name = 'RemoteCommandError';
  }
}

export class DeployTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeployTimeoutError';
  }
}

/** The one place a direct deploy's failure becomes a DeployResult error kind. */
export function deployErrorKind(err: unknown): DeployErrorKind {
  if (err instanceof SlaveConnectError) {
    switch (err.failure) {
      case 'auth': return 'auth';
      case 'key': return 'config';
      case 'host-key': return 'host_key';
      default: return 'connect';
    }
  }
  if (err instanceof DeployTimeoutError) return 'timeout';
  if (err instanceof HostUnsupportedError) return 'unsupported';
  if (err instanceof RemoteCommandError) return 'install_failed';
  if (err instanceof DeployConfigError) return 'config';
  return 'engine';
}

/** The stack config or a secret the deploy needs is missing or wrong. */
export class DeployConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeployConfigError';
  }
}

/** The probe found that no configured strategy can work on the host (refused before installing). */
export class HostUnsupportedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostUnsupportedError';
  }
}
