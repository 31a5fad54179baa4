import type { Command } from 'commander';
import { withFleet, DEFAULT_STACK } from '../fleet-context';
import { shortCommit } from '../../core/version-info';

export function registerReleases(program: Command): void {
  program
    .command('releases')
    .description('the releases the master keeps in D8_HOME/releases (newest first) and which slaves run each, or were last healthy at it')
    .option('-s, --stack <stack>', 'stack', DEFAULT_STACK)
    .option('--repo <dir>', 'repository with the stack files (default: this checkout)')
    .option('--json', 'print [{ commit, bundle_hash, dir, last_deployed_at, running_on, last_good_for }]')
    .addHelpText('after', `
The master keeps the bundle of every commit it deployed (the last 3, plus each slave's last good one
and the one it runs), so a failed rollout is rolled back without rebuilding from git.`)
    .action(async (opts: { stack: string; repo?: string; json?: boolean }) => {
      await withFleet(opts, (ctx) => {
        const stack = ctx.config.stack;
        const slaves = ctx.store.releases.slaves(stack);
        const rows = ctx.store.releases.list(stack).map((r) => ({
          commit: r.commit, bundle_hash: r.bundle_hash, dir: r.dir, created_at: r.created_at, last_deployed_at: r.last_deployed_at,
          running_on: slaves.filter((s) => s.running_commit === r.commit).map((s) => s.slave),
          last_good_for: slaves.filter((s) => s.good_commit === r.commit).map((s) => s.slave),
        }));
        if (opts.json) {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        if (rows.length === 0) {
          process.stdout.write(`no release kept for stack ${stack} yet: the master keeps each bundle it deploys\n`);
          return;
        }
        for (const r of rows) {
          process.stdout.write(`${shortCommit(r.commit)}  ${r.bundle_hash.slice(0, 16)}  deployed ${r.last_deployed_at}` +
            `  runs on: ${r.running_on.join(', ') || '-'}  last good for: ${r.last_good_for.join(', ') || '-'}\n`);
        }
      });
    });
}
