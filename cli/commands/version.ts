import type { Command } from 'commander';
import { captureToFile, readVersionInfo, VERSION_FILE_NAME } from '../../core/version-info';
import { repoRoot } from '../../core/paths';
import path from 'path';

export function registerVersion(program: Command): void {
  const version = program.command('version').description('show or capture version_info.json (the build identity)');
  version
    .command('capture')
    .description('write version_info.json from git (branch, commit, version, deployed_at, dirty)')
    .option('-o, --output <file>', 'where to write it', undefined)
    .option('--keep-existing', 'outside a git checkout, keep the existing file instead of failing')
    .option('--json', 'print the captured info as JSON')
    .action((opts: { output?: string; keepExisting?: boolean; json?: boolean }) => {
      const r = captureToFile({ repoDir: process.cwd(), output: opts.output && path.resolve(opts.output), keepExisting: opts.keepExisting });
      if (opts.json) process.stdout.write(JSON.stringify(r.info) + '\n');
      else process.stdout.write(`${r.file}: ${r.info.branch}@${r.info.commit}${r.info.dirty ? ' (dirty)' : ''}${r.kept ? ' (kept: not a git checkout)' : ''}\n`);
    });
  version
    .command('show', { isDefault: true })
    .description('print the version_info.json of this checkout')
    .action(() => {
      process.stdout.write(JSON.stringify(readVersionInfo(path.join(repoRoot(), VERSION_FILE_NAME)), null, 2) + '\n');
    });
}
