/**
 * The agent's configuration, read from the environment once at start. Every problem is an
 * AgentConfigError whose message names the variable to fix; the entry point turns it into exit
 * code 2 and one stderr line.
 */
import fs from 'fs';
import path from 'path';
import { DEFAULT_AGENT_PORT, StrategySchema, SUPERVISORS, SupervisorSchema, type Strategy, type Supervisor } from '../core/protocol';
import { weakTokenReason } from '../core/tokens';
import { VERSION_FILE_NAME } from '../core/version-info';

export const DEFAULT_TASK_IMAGE = 'd8-base:bookworm';

export type RestartMode = 'spawn' | 'exit';

export interface AgentConfig {
  /** The first accepted token. */
  token: string;
  /** Every accepted token: one line each in the token file (two only while a rotation is under way). */
  tokens: string[];
  /** D8_AGENT_TOKEN_FILE, where a rotation keeps the accepted tokens; null with D8_AGENT_TOKEN. */
  tokenFile: string | null;
  host: string;
  port: number;
  versionFile: string;
  installStrategy: Strategy | null;
  /** What keeps this agent running (D8_SUPERVISOR, set by the installer); null when started by hand. */
  supervisor: Supervisor | null;
  venvDir: string | null;
  taskImage: string;
  python: string;
  maxConcurrency: number;
  /** Directory of update.json (see update-state.ts); null: no update state. */
  stateDir: string | null;
  authMaxFailures: number;
  authWindowMs: number;
  authLockoutMs: number;
  restartMode: RestartMode;
  /** How long to retry binding a port still held by the agent we restarted from. */
  bindRetryMs: number;
  /** Pid of the agent that restarted into this one, if any. */
  restartedFrom: number | null;
  /** D8_TLS_DIR: where the key pair lives (made there when missing); the agent then speaks HTTPS only. Null: plain HTTP. */
  tlsDir: string | null;
  /** D8_LOG_FILE: the agent writes its log there itself, capped (log-file.ts); null: stderr (docker, tests, by hand). */
  logFile: string | null;
  /** D8_LOG_MAX_BYTES: the size at which the log file is rotated (one older generation is kept). */
  logMaxBytes: number;
  /** D8_AGENT_ANNOUNCE_SECONDS: how often the start-up line is said again (it must outlive log rotation). */
  announceEveryMs: number;
}

/** 5 MiB, so the log and its one kept generation stay under 10 MiB on an SD card whatever the uptime. */
export const DEFAULT_LOG_MAX_BYTES = 5 * 1024 * 1024;

export class AgentConfigError extends Error {
  readonly exitCode = 2;
  constructor(message: string, readonly variable: string) {
    super(message);
    this.name = 'AgentConfigError';
  }
}

const TOKEN_HINT = 'set D8_AGENT_TOKEN (or D8_AGENT_TOKEN_FILE, a 0600 file holding it) to a random string of at least 24 characters, e.g. `openssl rand -base64 32`';

function intVar(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return def;
  const n = /^\d{1,9}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!(n >= min && n <= max)) {
    throw new AgentConfigError(`${name} must be an integer between ${min} and ${max} (got "${raw.slice(0, 40)}")`, name);
  }
  return n;
}

function strVar(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v;
}

/** The accepted tokens: D8_AGENT_TOKEN, else every line of the file named by D8_AGENT_TOKEN_FILE. */
export function readTokens(env: NodeJS.ProcessEnv): { tokens: string[]; file: string | null } {
  const direct = strVar(env, 'D8_AGENT_TOKEN');
  let tokens: Array<string | undefined> = [direct];
  let source = 'D8_AGENT_TOKEN';
  let file: string | null = null;
  if (direct === undefined) {
    file = strVar(env, 'D8_AGENT_TOKEN_FILE') ?? null;
    if (file !== null) {
      source = `D8_AGENT_TOKEN_FILE (${file})`;
      try {
        const lines = fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
        tokens = lines.length ? lines : [''];
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        throw new AgentConfigError(`cannot read the token file D8_AGENT_TOKEN_FILE=${file} (${code}); ${TOKEN_HINT}`, 'D8_AGENT_TOKEN_FILE');
      }
    }
  }
  for (const token of tokens) {
    const reason = weakTokenReason(token);
    if (reason) {
      const where = token === undefined ? '' : ` in ${source}`;
      throw new AgentConfigError(`refusing to start: ${reason}${where}; ${TOKEN_HINT}`, token === undefined ? 'D8_AGENT_TOKEN' : source.split(' ')[0]);
    }
  }
  return { tokens: tokens as string[], file };
}

/**
 * The version file: D8_VERSION_FILE, else version_info.json beside the running file (the bundle
 * ships it next to agent.js), else the repository root's when running from agent/ or dist/agent/.
 */
export function resolveVersionFile(env: NodeJS.ProcessEnv, hereDir: string): string {
  const explicit = strVar(env, 'D8_VERSION_FILE');
  if (explicit !== undefined) return path.resolve(explicit);
  const candidates = [hereDir, path.dirname(hereDir), path.dirname(path.dirname(hereDir))]
    .map((d) => path.join(d, VERSION_FILE_NAME));
  return candidates.find((f) => fs.existsSync(f)) ?? candidates[0];
}

function restartModeOf(env: NodeJS.ProcessEnv): RestartMode {
  const explicit = strVar(env, 'D8_RESTART_MODE');
  if (explicit !== undefined) {
    if (explicit !== 'spawn' && explicit !== 'exit') {
      throw new AgentConfigError(`D8_RESTART_MODE must be "spawn" or "exit" (got "${explicit.slice(0, 40)}")`, 'D8_RESTART_MODE');
    }
    return explicit;
  }
  // As PID 1 of a container or the main process of a systemd unit, a detached child would be
  // killed with us: exit and let the restart policy bring us back instead.
  if (process.pid === 1 || env.INVOCATION_ID) return 'exit';
  return 'spawn';
}

export function loadAgentConfig(env: NodeJS.ProcessEnv, hereDir: string): AgentConfig {
  const { tokens, file: tokenFile } = readTokens(env);
  const rawStrategy = strVar(env, 'D8_INSTALL_STRATEGY');
  let installStrategy: Strategy | null = null;
  if (rawStrategy !== undefined) {
    const s = StrategySchema.safeParse(rawStrategy);
    if (!s.success) throw new AgentConfigError(`D8_INSTALL_STRATEGY must be one of docker, venv, native (got "${rawStrategy.slice(0, 40)}")`, 'D8_INSTALL_STRATEGY');
    installStrategy = s.data;
  }
  const rawSupervisor = strVar(env, 'D8_SUPERVISOR');
  let supervisor: Supervisor | null = null;
  if (rawSupervisor !== undefined) {
    const s = SupervisorSchema.safeParse(rawSupervisor);
    if (!s.success) throw new AgentConfigError(`D8_SUPERVISOR must be one of ${SUPERVISORS.join(', ')} (got "${rawSupervisor.slice(0, 40)}")`, 'D8_SUPERVISOR');
    supervisor = s.data;
  }
  const restartedFromRaw = strVar(env, 'D8_RESTARTED_FROM');
  const restartedFrom = restartedFromRaw && /^\d+$/.test(restartedFromRaw) ? Number(restartedFromRaw) : null;
  const venv = strVar(env, 'D8_VENV_DIR');
  const stateDir = strVar(env, 'D8_STATE_DIR');
  const tlsDir = strVar(env, 'D8_TLS_DIR');
  const logFile = strVar(env, 'D8_LOG_FILE');
  return {
    token: tokens[0],
    tokens,
    tokenFile,
    host: strVar(env, 'D8_AGENT_HOST') ?? '0.0.0.0',
    port: intVar(env, 'D8_AGENT_PORT', DEFAULT_AGENT_PORT, 0, 65535),
    versionFile: resolveVersionFile(env, hereDir),
    installStrategy,
    supervisor,
    venvDir: venv === undefined ? null : path.resolve(venv),
    taskImage: strVar(env, 'D8_TASK_IMAGE') ?? DEFAULT_TASK_IMAGE,
    python: strVar(env, 'D8_PYTHON') ?? 'python3',
    maxConcurrency: intVar(env, 'D8_MAX_CONCURRENCY', 4, 1, 1024),
    stateDir: stateDir === undefined ? null : path.resolve(stateDir),
    authMaxFailures: intVar(env, 'D8_AUTH_MAX_FAILURES', 10, 1, 1_000_000),
    authWindowMs: intVar(env, 'D8_AUTH_WINDOW_S', 60, 1, 86_400) * 1000,
    authLockoutMs: intVar(env, 'D8_AUTH_LOCKOUT_S', 300, 1, 86_400) * 1000,
    restartMode: restartModeOf(env),
    bindRetryMs: restartedFrom !== null ? intVar(env, 'D8_BIND_RETRY_S', 15, 0, 600) * 1000 : 0,
    restartedFrom,
    tlsDir: tlsDir === undefined ? null : path.resolve(tlsDir),
    logFile: logFile === undefined ? null : path.resolve(logFile),
    logMaxBytes: intVar(env, 'D8_LOG_MAX_BYTES', DEFAULT_LOG_MAX_BYTES, 4096, 1024 * 1024 * 1024),
    announceEveryMs: intVar(env, 'D8_AGENT_ANNOUNCE_SECONDS', 3600, 1, 7 * 86400) * 1000,
  };
}
