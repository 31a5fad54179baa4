/**
 * The D8 agent: entry point (`node agent.js`, `d8 agent`). Configured from the environment, see
 * config.ts. Bundled by esbuild into one file: keep every import static and free of native modules.
 */
import os from 'os';
import { createLogger, type Logger } from '../core/logger';
import { Redactor, environmentSecrets } from '../core/redact';
import { readVersionInfo, VersionFileError, type VersionInfo } from '../core/version-info';
import { AgentConfigError, loadAgentConfig, type AgentConfig } from './config';
import { ExecutionMethodsProbe } from './methods';
import { restartDetached } from './restart';
import { RotatingLogFile } from './log-file';
import { AgentServer } from './server';
import { ensureAgentCertificate, type AgentCertificate } from './tls-cert';

export { AgentConfigError } from './config';

/** The agent could not start for a reason other than its configuration (e.g. the port is taken). */
export class AgentStartError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'AgentStartError';
  }
}

export interface RunningAgent {
  /** The bound port (the real one when D8_AGENT_PORT=0). */
  port: number;
  host: string;
  config: AgentConfig;
  version: VersionInfo;
  /** The SHA-256 fingerprint of the certificate it serves HTTPS with; null: plain HTTP. */
  tlsFingerprint: string | null;
  /** Stops listening, cancels running tasks; does not exit the process. */
  close(): Promise<void>;
}

/** To D8_LOG_FILE, capped, when the supervisor appends for ever (setsid, cron, units); else to stderr. */
function agentLogger(config: AgentConfig): Logger {
  if (config.logFile === null) return createLogger({ name: 'd8-agent', secrets: config.tokens });
  let destination: RotatingLogFile;
  try {
    destination = new RotatingLogFile(config.logFile, config.logMaxBytes);
  } catch (err) {
    const logger = createLogger({ name: 'd8-agent', secrets: config.tokens });
    logger.warn({ log_file: config.logFile, err: (err as Error).message }, 'cannot open the log file; logging to stderr');
    return logger;
  }
  return createLogger({ name: 'd8-agent', secrets: config.tokens, destination });
}

function listenWithRetry(server: AgentServer, config: AgentConfig, logger: Logger): Promise<number> {
  const deadline = Date.now() + config.bindRetryMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const onError = (err: NodeJS.ErrnoException): void => {
        server.http.removeListener('listening', onListening);
        if (err.code === 'EADDRINUSE' && Date.now() < deadline) {
          setTimeout(attempt, 100);
          return;
        }
        const hint = err.code === 'EADDRINUSE'
          ? 'another process (another agent?) holds it: stop it or set D8_AGENT_PORT'
          : err.code === 'EACCES' ? 'ports below 1024 need root: set D8_AGENT_PORT'
          : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND' ? 'no such local address: set D8_AGENT_HOST' : err.message;
        reject(new AgentStartError(`cannot listen on ${config.host}:${config.port} (${err.code ?? 'error'}): ${hint}`));
      };
      const onListening = (): void => {
        server.http.removeListener('error', onError);
        const addr = server.http.address();
        resolve(typeof addr === 'object' && addr ? addr.port : config.port);
      };
      server.http.once('error', onError);
      server.http.once('listening', onListening);
      server.http.listen(config.port, config.host);
    };
    if (config.restartedFrom !== null) logger.debug({ from_pid: config.restartedFrom }, 'restarted; binding the port');
    attempt();
  });
}

let processHandlersInstalled = false;

/**
 * Starts the agent. Throws AgentConfigError (exit code 2) on bad configuration and AgentStartError
 * (exit code 1) when it cannot listen. SIGTERM/SIGINT stop it cleanly.
 */
export async function runAgent(env: NodeJS.ProcessEnv = process.env): Promise<RunningAgent> {
  const config = loadAgentConfig(env, __dirname);
  let version: VersionInfo;
  try {
    version = readVersionInfo(config.versionFile, { missingDeployedAt: () => new Date().toISOString() });
  } catch (err) {
    if (err instanceof VersionFileError) {
      throw new AgentConfigError(`${err.message}; set D8_VERSION_FILE to a valid version_info.json (npx d8 version capture writes one)`, 'D8_VERSION_FILE');
    }
    throw err;
  }
  const logger = agentLogger(config);
  let tls: AgentCertificate | null = null;
  if (config.tlsDir !== null) {
    try {
      const pair = ensureAgentCertificate(config.tlsDir, `d8-agent ${os.hostname()}`);
      if (pair.made) logger.info({ tls_dir: config.tlsDir, fingerprint: pair.fingerprint, why: pair.made }, 'made a new key pair and self-signed certificate');
      tls = pair;
    } catch (err) {
      throw new AgentConfigError(`cannot make or read the TLS key pair in D8_TLS_DIR=${config.tlsDir}: ${(err as Error).message} (the directory must be writable by the agent's user)`, 'D8_TLS_DIR');
    }
  }
  const methods = new ExecutionMethodsProbe({ venvDir: config.venvDir, taskImage: config.taskImage, python: config.python });
  await methods.init();

  let closing: Promise<void> | null = null;
  let reannounce: NodeJS.Timeout | null = null;
  let port = config.port;
  const close = (): Promise<void> => {
    if (reannounce) clearInterval(reannounce);
    closing ??= (async () => {
      await new Promise<void>((resolve) => {
        server.http.close(() => resolve());
        server.http.closeAllConnections();
      });
      server.cancelAll();
      await server.drain(3000);
    })();
    return closing;
  };
  const server: AgentServer = new AgentServer({
    config, version, logger, methods, env, tls,
    hostname: os.hostname(),
    onRestart: () => {
      void restartDetached({ mode: config.restartMode, env, port, logger, shutdown: close });
    },
  });
  port = await listenWithRetry(server, config, logger);

  if (!processHandlersInstalled) {
    processHandlersInstalled = true;
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      process.once(sig, () => {
        logger.info({ signal: sig }, 'stopping');
        void close().then(() => process.exit(0));
      });
    }
    // A daemon must not die of one bad request or a bug in a rarely used path: log and keep serving.
    process.on('uncaughtException', (err) => logger.error({ err: `${err.name}: ${err.message}` }, 'uncaught exception'));
    process.on('unhandledRejection', (err) => logger.error({ err: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }, 'unhandled rejection'));
  }

  // The startup line is always written: the installer and the tests read the bound port from it.
  const startupLogger = logger.isLevelEnabled('info') ? logger : logger.child({}, { level: 'info' });
  const announce = (): void => startupLogger.info({
    port,
    host: config.host,
    commit: version.commit,
    install_strategy: config.installStrategy,
    execution_methods: methods.snapshot(),
    restarted_from: config.restartedFrom,
    scheme: tls ? 'https' : 'http',
    tls_fingerprint: tls?.fingerprint ?? null,
  }, 'listening');
  announce();
  // Said again (hourly by default): a swarm master reads the certificate from this line in the task's logs,
  // which the log driver rotates (5 MB × 2), so the line must outlive any rotation of a long-lived task.
  reannounce = setInterval(announce, config.announceEveryMs);
  reannounce.unref();
  return { port, host: config.host, config, version, close, tlsFingerprint: tls?.fingerprint ?? null };
}

/** Runs the agent as a program: configuration errors exit 2 with one stderr line, start errors 1. */
export async function runAgentMain(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  try {
    await runAgent(env);
  } catch (err) {
    const code = err instanceof AgentConfigError ? err.exitCode : 1;
    const msg = new Redactor(environmentSecrets(env)).text(err instanceof Error ? err.message : String(err));
    process.stderr.write(`d8 agent: ${msg}\n`);
    process.exit(code);
  }
}

if (require.main === module) void runAgentMain();
