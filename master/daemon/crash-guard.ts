/**
 * The master process's last line of defence. A rejected promise nobody awaited is a bug in one
 * task, not a reason to stop supervising the fleet: it is logged (once, as an error) and the daemon
 * runs on — its sweeps, polls and dispatcher each retry on their own schedule. An uncaught
 * exception leaves the process in an unknown state: one fatal line, then exit non-zero, so the
 * service manager (systemd's Restart=, cron's @reboot loop) starts a clean master. Never a silent hang.
 */
import type { Logger } from '../../core/logger';

/** The master's exit status after an uncaught exception (EX_SOFTWARE). */
export const MASTER_FATAL_EXIT = 70;

const describe = (err: unknown): { err: string; stack?: string } =>
  err instanceof Error ? { err: err.message, stack: err.stack } : { err: String(err) };

/** Installs the handlers; returns a function that removes them. */
export function guardMasterProcess(logger: Logger, exit: (code: number) => void = (code) => process.exit(code)): () => void {
  const onRejection = (reason: unknown): void => {
    logger.error(describe(reason), `unhandled rejection (a bug; the master keeps running): ${describe(reason).err}`);
  };
  const onException = (err: unknown): void => {
    logger.fatal(describe(err), `fatal: ${describe(err).err}; the master exits ${MASTER_FATAL_EXIT} for its service manager to restart it`);
    exit(MASTER_FATAL_EXIT);
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}
