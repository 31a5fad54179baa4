import type { Command } from 'commander';
import { runAgentMain } from '../../agent/main';

const ENV_HELP = `
Environment (options override it):
  D8_AGENT_TOKEN        bearer token for /api/execute and /api/restart (required, >= 24 random chars)
  D8_AGENT_TOKEN_FILE   or: a file holding the token (mode 0600)
  D8_AGENT_PORT         port (default 7600; 0 = any free port, printed in the "listening" log line)
  D8_AGENT_HOST         bind address (default 0.0.0.0)
  D8_VERSION_FILE       version_info.json to report (default: the one beside the agent)
  D8_INSTALL_STRATEGY   docker|venv|native: reported as install_strategy
  D8_VENV_DIR           python venv for method venv (available iff $D8_VENV_DIR/bin/python exists)
  D8_TASK_IMAGE         image for method docker (default d8-base:bookworm, see scripts/docker-base-image.sh)
  D8_PYTHON             python for method native (default python3)
  D8_MAX_CONCURRENCY    concurrent executions (default 4; 429 beyond)
  D8_STATE_DIR          directory of update.json (update_pending / update_failed)
  D8_AUTH_MAX_FAILURES, D8_AUTH_WINDOW_S, D8_AUTH_LOCKOUT_S
                        lockout after repeated auth failures from one address (default 10 in 60 s -> 300 s)
  D8_RESTART_MODE       spawn|exit: how /api/restart restarts (default: exit as PID 1 or under systemd)
  D8_LOG_LEVEL          pino level (default info); logs are JSON lines on stderr

Example:
  D8_AGENT_TOKEN=$(openssl rand -base64 32) npx d8 agent --port 7600`;

interface AgentOptions {
  port?: string;
  host?: string;
  versionFile?: string;
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the D8 agent (the HTTP service every slave runs on port 7600)')
    .option('-p, --port <port>', 'port to listen on (sets D8_AGENT_PORT)')
    .option('--host <address>', 'address to bind (sets D8_AGENT_HOST)')
    .option('--version-file <file>', 'version_info.json to report (sets D8_VERSION_FILE)')
    .addHelpText('after', ENV_HELP)
    .action(async (opts: AgentOptions) => {
      // Written into process.env so that a detached restart (same argv and env) keeps them.
      if (opts.port !== undefined) process.env.D8_AGENT_PORT = opts.port;
      if (opts.host !== undefined) process.env.D8_AGENT_HOST = opts.host;
      if (opts.versionFile !== undefined) process.env.D8_VERSION_FILE = opts.versionFile;
      await runAgentMain(process.env);
    });
}
