import path from 'path';
import type { Command } from 'commander';
import { buildBundle } from '../../agent/bundle/build';
import { repoRoot } from '../../core/paths';
import { loadStack } from './up';

export function registerBundle(program: Command): void {
  program
    .command('bundle')
    .description('build the agent bundle: agent.js (one file, node >= 18), version_info.json, install.sh, uninstall.sh, Dockerfile, requirements.txt, BUNDLE_HASH')
    .option('-o, --output <dir>', 'write the bundle into this directory (replaced) instead of build/bundles/<hash>')
    .option('-s, --stack <stack>', 'take requirements.txt from this stack\'s d8:requirements (default: none)')
    .option('--dir <dir>', 'directory with Pulumi.<stack>.yaml')
    .option('--json', 'print { dir, hash, versionInfo, files } as JSON')
    .action(async (o: { output?: string; stack?: string; dir?: string; json?: boolean }) => {
      const requirements = o.stack ? loadStack(o.stack, o.dir).config.requirements : [];
      const started = Date.now();
      const b = await buildBundle({ repoDir: repoRoot(), outDir: o.output && path.resolve(o.output), requirements });
      if (o.json) {
        process.stdout.write(JSON.stringify(b, null, 2) + '\n');
        return;
      }
      const v = b.versionInfo;
      process.stdout.write(`${b.dir}\n`);
      process.stderr.write(`bundle ${b.hash.slice(0, 16)}: commit ${v.commit.slice(0, 7)} on ${v.branch}${v.dirty ? ' (dirty tree)' : ''}, ` +
        `${b.files.length} files, ${requirements.length} requirement(s), built in ${Date.now() - started} ms\n`);
    });
}
