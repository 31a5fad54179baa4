/** Why a direct deploy could not even start talking to a slave. Messages name the fix. */
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
