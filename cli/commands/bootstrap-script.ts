import fs from 'fs';
import os from 'os';
import path from 'path';
import type { Command } from 'commander';
import { buildBundle } from '../../agent/bundle/build';
import { bootstrapScript, writeBootstrapScript } from '../../agent/bundle/bootstrap';
import { repoRoot } from '../../core/paths';
import { findSlave, optionalAgentToken } from '../../core/stack-config';
import { slaveTokens } from '../../master/agent-tokens';
import { loadStack } from './up';
import { RUNTIME_ARCHES, RuntimeArchSchema, runtimeSource } from '../../core/node-runtime';
import { RuntimeCache } from '../../core/runtime-cache';

interface Opts { output?: string; stack: string; dir?: string; master?: string; force?: boolean; arch?: string }

export function registerBootstrapScript(program: Command): void {
  program
    .command('bootstrap-script <slave>')
    .description('write one self-contained install script (bundle embedded, token filled in, mode 0700) for a slave the master cannot SSH into')
    .option('-o, --output <file>', 'where to write it', undefined)
    .option('-s, --stack <stack>', 'stack the slave belongs to', 'dev')
    .option('--dir <dir>', 'directory with Pulumi.<stack>.yaml')
    .option('--master <address>', 'the master\'s address, printed by the script for the operator (default: this host name)')
    .option('--force', 'overwrite an existing output file')
    .option('--arch <arch>', `embed the Node.js runtime for a host without node (${RUNTIME_ARCHES.join(', ')}; see \`d8 probe\` or \`uname -m\`)`)
    .addHelpText('after', `
Copy the script to the slave by any means (USB stick, scp from elsewhere) and run it there as the
user the agent should run as:  sh ./install-<slave>.sh
It holds the slave's own agent token (D8_HOME/tokens/<stack>/<slave>.json, made on first use; no
other slave accepts it): keep the script private and delete it after use. The master presents that
token once the agent answers; \`d8 rotate-token <slave>\` replaces it later.

With --arch, the pinned Node.js runtime (d8:nodeVersion, from d8:nodeDistUrl through the master's cache)
is embedded (~50 MiB more) with its SHASUMS256.txt checksum, checked and unpacked on the host: the
host needs no node and no network, only sh, tar, gzip and base64.`)
    .action(async (name: string, o: Opts) => {
      const { config } = loadStack(o.stack, o.dir);
      const slave = findSlave(config, name);
      optionalAgentToken(config);
      // The slave's own token, as a deploy over SSH would give it: refused by every other slave.
      const token = slaveTokens(config).forDeploy(slave.name);
      const arch = o.arch === undefined ? undefined : RuntimeArchSchema.safeParse(o.arch);
      if (arch && !arch.success) throw new Error(`--arch ${o.arch}: not a shipped arch (use ${RUNTIME_ARCHES.join(', ')})`);
      const file = path.resolve(o.output ?? `install-${slave.name}.sh`);
      if (fs.existsSync(file) && !o.force) throw new Error(`${file} already exists: pass --force to overwrite it, or -o another file`);
      if (o.force) fs.rmSync(file, { force: true });
      process.stderr.write(`building the agent bundle…\n`);
      const bundle = await buildBundle({ repoDir: repoRoot(), requirements: config.requirements });
      const runtime = arch?.success
        ? await new RuntimeCache({ onProgress: (m) => process.stderr.write(`${m}\n`) }).ensure(runtimeSource(config), arch.data)
        : undefined;
      const script = bootstrapScript({ runtime,
        bundle, slave, stack: config.stack, token, master: o.master ?? os.hostname(),
        attempts: config.installAttempts, delaySeconds: config.installDelaySeconds, baseImage: config.baseImage,
      });
      writeBootstrapScript(file, script);
      process.stdout.write(`${file}\n`);
      process.stderr.write(`wrote ${file} (mode 0700, ${(script.length / 1024).toFixed(0)} KiB, commit ${bundle.versionInfo.commit.slice(0, 7)}): ` +
        `copy it to ${slave.host === 'local' ? 'the slave' : slave.host} and run \`sh ${path.basename(file)}\` there as the agent's user; it contains the agent token\n`);
    });
}
