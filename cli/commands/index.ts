import type { Command } from 'commander';
import { registerVersion } from './version';
import { registerMaster } from './master';
import { registerStatus } from './status';
import { registerRetry, registerUpdate } from './retry';
import { registerExec } from './exec';
import { registerRequests } from './requests';
import { registerAgent } from './agent';
import { registerUp } from './up';
import { registerBundle } from './bundle';
import { registerBootstrapScript } from './bootstrap-script';
import { registerProbe } from './probe';
import { registerRuntime } from './runtime';
import { registerTrust } from './trust';
import { registerRotateToken } from './rotate-token';
import { registerTokens } from './tokens';
import { registerReleases } from './releases';
import { registerRollout } from './rollout';

/** Every `d8` subcommand; add one line per command module. */
export const COMMANDS: Array<(program: Command) => void> = [
  registerVersion,
  registerMaster, registerStatus, registerRetry, registerUpdate, registerExec, registerRequests,
  registerAgent,
  registerUp, registerBundle, registerBootstrapScript,
  registerProbe, registerRuntime,
  registerTrust, registerRotateToken, registerTokens, registerReleases, registerRollout,
];
