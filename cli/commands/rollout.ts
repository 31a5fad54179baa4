import type { Command } from 'commander';
import { withFleet, DEFAULT_STACK } from '../fleet-context';
import { formatRollout } from '../../master/rollout/view';
import { latestRollout, moveRollout, ROLLOUT_MOVES, ROLLOUT_VERBS } from '../../master/rollout/control';

interface Opts { stack: string; repo?: string; json?: boolean }

export function registerRollout(program: Command): void {
  const cmd = program
    .command('rollout')
    .description("the rollout of the master's commit (d8:rollout): canary first, then batches behind a health gate; status, pause, resume, abort")
    .addHelpText('after', `
A rollout starts when the master's commit changes and slaves are behind. A slave that fails to install
or does not stay healthy at the new commit for healthyForSeconds is redeployed with its last good
release, the rollout halts and a request asks whether to retry (d8 requests approve|reject <id>).`);
  const common = (c: Command) => c.option('-s, --stack <stack>', 'stack', DEFAULT_STACK)
    .option('--repo <dir>', 'repository with the stack files (default: this checkout)')
    .option('--json', 'print the rollout as JSON');
  common(cmd.command('status').description('the latest rollout: commit, status, stage, and each slave (done, updating, pending, rolled back)'))
    .action(async (opts: Opts) => {
      await withFleet(opts, (ctx) => {
        const v = latestRollout(ctx.store.rollouts, ctx.config.stack, !!ctx.config.rollout);
        process.stdout.write(opts.json ? JSON.stringify(v, null, 2) + '\n' : formatRollout(v));
      });
    });
  for (const verb of ROLLOUT_VERBS) {
    common(cmd.command(verb).description(ROLLOUT_MOVES[verb].help)).action(async (opts: Opts) => {
      await withFleet(opts, (ctx) => {
        const r = moveRollout(ctx.store.rollouts, ctx.config.stack, !!ctx.config.rollout, verb);
        process.stdout.write(opts.json ? JSON.stringify(r.view, null, 2) + '\n' : `${r.message}\n`);
      });
    });
  }
}
