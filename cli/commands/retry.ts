import { Command, Option } from 'commander';
import { withFleet, cliControl, DEFAULT_STACK } from '../fleet-context';
import type { EngineChoice } from '../../master/deploy/select';
import type { ControlKind } from '../../master/store/commands';
import { controlExitCode, exitCodesHelp } from '../exit-codes';

const HELP: Record<ControlKind, { description: string; after: string }> = {
  retry: {
    description: 'recover or update one slave now (through the running daemon, or from here when none runs) and say what happened',
    after: `
A healthy slave is only re-checked; a behind one is redeployed with the master's commit; a pending or
dead one is restarted (POST /api/restart) or redeployed. A slave ahead of the master is never
downgraded here. Exit code 0 when the slave ends up fine; when a deploy failed, its kind's code (below); 1 otherwise.`,
  },
  update: {
    description: "redeploy one slave now with the master's commit, whatever its state (through the running daemon, or from here)",
    after: `
Unlike retry, this always redeploys (the same as approving an update request or /update in Telegram).
Exit code 0 when the slave then reports the master's commit; when the deploy failed, its kind's code (below); 1 otherwise.`,
  },
};

function registerControlCommand(program: Command, kind: ControlKind): void {
  program
    .command(`${kind} <slave>`)
    .description(HELP[kind].description)
    .option('-s, --stack <stack>', 'stack', DEFAULT_STACK)
    .option('--repo <dir>', 'repository with the stack files (default: this checkout)')
    .addOption(new Option('-e, --engine <engine>', 'deploy engine when no daemon runs').choices(['auto', 'pulumi', 'direct']).default('auto'))
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `${HELP[kind].after}\n\n${exitCodesHelp('the slave ends up fine')}`)
    .action(async (slave: string, opts: { stack: string; repo?: string; engine: EngineChoice; json?: boolean }) => {
      await withFleet(opts, async (ctx) => {
        const control = cliControl(ctx, opts.engine);
        if (!opts.json) process.stderr.write(control.daemonRunning() ? `asking the running master to ${kind} ${slave}…\n` : `${kind === 'retry' ? 'retrying' : 'updating'} ${slave} from this process…\n`);
        const r = kind === 'retry' ? await control.retry(slave) : await control.update(slave);
        if (opts.json) process.stdout.write(JSON.stringify(r) + '\n');
        else process.stdout.write(`${r.ok ? 'ok' : 'failed'}: ${r.message}${r.build_log_path ? `\nbuild log: ${r.build_log_path}` : ''}\n`);
        process.exitCode = controlExitCode(r);
      });
    });
}

export const registerRetry = (program: Command): void => registerControlCommand(program, 'retry');
export const registerUpdate = (program: Command): void => registerControlCommand(program, 'update');
