import type { Command } from 'commander';
import { withFleet, DEFAULT_STACK } from '../fleet-context';
import { FleetControl, SlaveNotHealthyError } from '../../master/control';
import { ExecutionMethodSchema, LIMITS, type ExecuteRequest, type ExecuteResponse } from '../../core/protocol';
import { CAPABILITIES, NeedSchema } from '../../core/tasks';
import { AllBusyError, NoFitError, TaskFailedError, TaskRouter } from '../../master/tasks/router';

interface ExecOpts { stack: string; repo?: string; python?: boolean; method: string; timeout?: string; cwd?: string; json?: boolean; any?: boolean; needs?: string[]; retryOnOther?: boolean }

/** Exit statuses of `d8 exec` besides the task's own. */
const EXIT = { notHealthy: 3, noFit: 5, allBusy: 6, failedMidTask: 7 } as const;

function exitFor(err: unknown): number {
  if (err instanceof SlaveNotHealthyError) return EXIT.notHealthy;
  if (err instanceof NoFitError) return EXIT.noFit;
  if (err instanceof AllBusyError) return EXIT.allBusy;
  if (err instanceof TaskFailedError) return EXIT.failedMidTask;
  return 1;
}

export function registerExec(program: Command): void {
  program
    .command('exec [slave] [command...]')
    .description('run a shell command (or python with --python) on a healthy slave, or with --any on whichever fits; prints its output and exits with its exit code')
    .option('-s, --stack <stack>', 'stack', DEFAULT_STACK)
    .option('--repo <dir>', 'repository with the stack files (default: this checkout)')
    .option('--python', 'the command is Python source')
    .option('-m, --method <method>', 'auto | docker | venv | native', 'auto')
    .option('-t, --timeout <seconds>', `task timeout (default ${LIMITS.defaultTimeoutS})`)
    .option('--cwd <dir>', 'working directory on the slave')
    .option('--json', 'print the agent\'s whole answer as JSON')
    .option('--any', 'let the master pick the slave: healthy, at its commit, not deploying, with every --needs, least busy')
    .option('--needs <need...>', `with --any: ${CAPABILITIES.join(', ')}, arch:<arch> or a slave label (d8:slaves[].labels)`)
    .option('--retry-on-other', 'with --any: when the chosen slave fails mid-task, run it on the next fit one (idempotent tasks only)')
    .addHelpText('after', `
Examples:
  d8 exec local -- uname -a
  d8 exec local --python -- 'import sys; print(sys.version)'
  d8 exec --any --needs gpu python -- nvidia-smi
Refuses a slave that is not healthy (exit 3); a failed task exits with the task's code.
With --any: no slave fits (5, naming what each lacks), every fit slave stayed busy (6), the chosen
slave failed mid-task and the task was not retried elsewhere (7). The chosen slave and why go to stderr.`)
    .action(async (first: string | undefined, rest: string[], opts: ExecOpts) => {
      // With --any every word is the command (`d8 exec --any -- uname -a`).
      const slave = opts.any ? undefined : first;
      const words = opts.any ? [first, ...rest].filter((w): w is string => w !== undefined) : rest;
      await withFleet(opts, async (ctx) => {
        if (!slave && !opts.any) throw new Error('name a slave, or pass --any to let the master choose (d8 exec --help)');
        if (!words.length) throw new Error('no command given: d8 exec <slave> -- <command>, or d8 exec --any -- <command>');
        if (!opts.any && (opts.needs || opts.retryOnOther)) throw new Error('--needs and --retry-on-other go with --any');
        for (const n of opts.needs ?? []) {
          const p = NeedSchema.safeParse(n);
          if (!p.success) throw new Error(`--needs "${n}" ${p.error.issues[0].message}`);
        }
        const method = ExecutionMethodSchema.safeParse(opts.method);
        if (!method.success) throw new Error(`--method must be one of auto, docker, venv, native (not "${opts.method}")`);
        const timeout = opts.timeout !== undefined ? Number(opts.timeout) : undefined;
        if (timeout !== undefined && !(timeout > 0 && timeout <= LIMITS.maxTimeoutS)) throw new Error(`--timeout must be between 1 and ${LIMITS.maxTimeoutS} seconds`);
        const task: ExecuteRequest = {
          command: words.join(' '), kind: opts.python ? 'python' : 'shell', method: method.data,
          ...(timeout !== undefined ? { timeout_s: timeout } : {}), ...(opts.cwd ? { working_dir: opts.cwd } : {}),
        };
        let r: ExecuteResponse;
        if (opts.any) {
          const router = new TaskRouter({ config: ctx.config, store: ctx.store, logger: ctx.logger });
          try {
            const routed = await router.run({ ...task, needs: opts.needs ?? [], retry_on_other: !!opts.retryOnOther });
            process.stderr.write(`d8: ran on ${routed.slave}: ${routed.why}\n`);
            if (opts.json) {
              process.stdout.write(JSON.stringify(routed) + '\n');
              process.exitCode = routed.result.exit_code ?? (routed.result.success ? 0 : 1);
              return;
            }
            r = routed.result;
          } finally {
            router.close();
          }
        } else {
          const control = new FleetControl({ config: ctx.config, store: ctx.store, repoDir: ctx.repoDir });
          r = await control.execute(slave!, task);
        }
        if (opts.json) {
          process.stdout.write(JSON.stringify(r) + '\n');
        } else {
          process.stdout.write(r.output);
          if (r.output && !r.output.endsWith('\n')) process.stdout.write('\n');
          if (r.truncated) process.stderr.write('d8: output truncated by the agent\n');
          if (r.error) process.stderr.write(`d8: ${r.error}\n`);
        }
        process.exitCode = r.exit_code ?? (r.success ? 0 : 1);
      }, exitFor);
    });
}
