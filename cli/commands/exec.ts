import type { Command } from 'commander';
import { withFleet, DEFAULT_STACK } from '../fleet-context';
import { FleetControl, SlaveNotHealthyError } from '../../master/control';
import { ExecutionMethodSchema, LIMITS } from '../../core/protocol';

interface ExecOpts { stack: string; repo?: string; python?: boolean; method: string; timeout?: string; cwd?: string; json?: boolean }

export function registerExec(program: Command): void {
  program
    .command('exec <slave> <command...>')
    .description('run a shell command (or python with --python) on a healthy slave; prints its output and exits with its exit code')
    .option('-s, --stack <stack>', 'stack', DEFAULT_STACK)
    .option('--repo <dir>', 'repository with the stack files (default: this checkout)')
    .option('--python', 'the command is Python source')
    .option('-m, --method <method>', 'auto | docker | venv | native', 'auto')
    .option('-t, --timeout <seconds>', `task timeout (default ${LIMITS.defaultTimeoutS})`)
    .option('--cwd <dir>', 'working directory on the slave')
    .option('--json', 'print the agent\'s whole answer as JSON')
    .addHelpText('after', `
Examples:
  d8 exec local -- uname -a
  d8 exec local --python -- 'import sys; print(sys.version)'
Refuses a slave that is not healthy (exit 3); a failed task exits with the task's code.`)
    .action(async (slave: string, words: string[], opts: ExecOpts) => {
      await withFleet(opts, async (ctx) => {
        const method = ExecutionMethodSchema.safeParse(opts.method);
        if (!method.success) throw new Error(`--method must be one of auto, docker, venv, native (not "${opts.method}")`);
        const timeout = opts.timeout !== undefined ? Number(opts.timeout) : undefined;
        if (timeout !== undefined && !(timeout > 0 && timeout <= LIMITS.maxTimeoutS)) throw new Error(`--timeout must be between 1 and ${LIMITS.maxTimeoutS} seconds`);
        const control = new FleetControl({ config: ctx.config, store: ctx.store, repoDir: ctx.repoDir });
        const r = await control.execute(slave, {
          command: words.join(' '), kind: opts.python ? 'python' : 'shell', method: method.data,
          ...(timeout !== undefined ? { timeout_s: timeout } : {}), ...(opts.cwd ? { working_dir: opts.cwd } : {}),
        });
        if (opts.json) {
          process.stdout.write(JSON.stringify(r) + '\n');
        } else {
          process.stdout.write(r.output);
          if (r.output && !r.output.endsWith('\n')) process.stdout.write('\n');
          if (r.truncated) process.stderr.write('d8: output truncated by the agent\n');
          if (r.error) process.stderr.write(`d8: ${r.error}\n`);
        }
        process.exitCode = r.exit_code ?? (r.success ? 0 : 1);
      }, (err) => (err instanceof SlaveNotHealthyError ? 3 : 1));
    });
}
