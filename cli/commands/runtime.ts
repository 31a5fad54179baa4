import type { Command } from 'commander';
import { RUNTIME_ARCHES, RuntimeArchSchema, runtimeSource, type RuntimeArch } from '../../core/node-runtime';
import { NodeVersionSchema } from '../../core/node-runtime';
import { RuntimeCache, runtimesDir, type CachedRuntime } from '../../core/runtime-cache';
import { fail } from '../fleet-context';
import { loadStack } from './up';

interface FetchOptions { stack: string; dir?: string; arch?: string[]; distUrl?: string; nodeVersion?: string; json?: boolean }

function parseArches(list: string[] | undefined): RuntimeArch[] {
  if (!list?.length) return [...RUNTIME_ARCHES];
  return list.flatMap((a) => a.split(',')).map((a) => {
    const r = RuntimeArchSchema.safeParse(a.trim());
    if (!r.success) throw new Error(`--arch ${a}: not a shipped arch (use ${RUNTIME_ARCHES.join(', ')})`);
    return r.data;
  });
}

export function registerRuntime(program: Command): void {
  const runtime = program.command('runtime').description('the Node.js runtime the master ships to hosts without node');
  runtime
    .command('fetch')
    .description('fill the runtime cache (D8_HOME/runtimes) ahead of time, e.g. for a master that will be offline')
    .option('-s, --stack <stack>', 'stack whose d8:nodeDistUrl / d8:nodeVersion to use', 'dev')
    .option('--dir <dir>', 'directory with Pulumi.<stack>.yaml (default: the current directory, else the repository)')
    .option('--arch <arch...>', `architectures (default: all of ${RUNTIME_ARCHES.join(', ')})`)
    .option('--dist-url <url>', 'mirror to fetch from (default: the stack\'s d8:nodeDistUrl, else https://nodejs.org/dist)')
    .option('--node-version <version>', 'release to fetch (default: the stack\'s d8:nodeVersion, else the pinned one)')
    .option('--json', 'print the cached tarballs as JSON')
    .addHelpText('after', `
Every tarball is checked against the release's SHASUMS256.txt before it is kept; one already in the
cache is checked again and not downloaded twice.

Examples:
  d8 runtime fetch --stack prod --arch arm64
  d8 runtime fetch --dist-url https://mirror.lan/nodejs --json`)
    .action(async (o: FetchOptions) => {
      let src;
      let arches: RuntimeArch[];
      try {
        arches = parseArches(o.arch);
        const { config } = loadStack(o.stack, o.dir);
        if (o.nodeVersion !== undefined && !NodeVersionSchema.safeParse(o.nodeVersion).success) {
          throw new Error(`--node-version ${o.nodeVersion}: must be a Node.js release like v22.22.0`);
        }
        src = runtimeSource({ nodeDistUrl: o.distUrl ?? config.nodeDistUrl, nodeVersion: o.nodeVersion ?? config.nodeVersion });
      } catch (err) {
        return fail(err, 2);
      }
      const say = (m: string): void => { process.stderr.write(`${m}\n`); };
      const cache = new RuntimeCache({ onProgress: say });
      const done: CachedRuntime[] = [];
      try {
        for (const arch of arches) {
          const r = await cache.ensure(src, arch);
          done.push(r);
          if (!o.json) say(`${r.fetched ? 'fetched' : 'cached '} ${r.file} (${(r.bytes / 1048576).toFixed(1)} MiB, sha256 ${r.sha256.slice(0, 16)}… matches SHASUMS256.txt)`);
        }
      } catch (err) {
        fail(err, 1);
      } finally {
        if (o.json) process.stdout.write(`${JSON.stringify({ version: src.version, distUrl: src.distUrl, dir: runtimesDir(), runtimes: done }, null, 2)}\n`);
      }
    });
}
