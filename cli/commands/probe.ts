import type { Command } from 'commander';
import type { HostFacts, ProbeReport } from '../../core/host-probe';
import { runtimeArchFor } from '../../master/deploy/probe';
import { DirectDeployer } from '../../master/deploy/direct';
import { findSlave, type SlaveConfig } from '../../core/stack-config';
import { fail } from '../fleet-context';
import { loadStack } from './up';

const gib = (kib: number | null): string => (kib === null ? '?' : `${(kib / 1048576).toFixed(1)} GiB`);

function factLines(f: HostFacts): Array<[string, string]> {
  const a = runtimeArchFor(f);
  const tools = (['curl', 'wget', 'tar', 'gzip', 'xz'] as const).map((t) => `${t} ${f.tools[t] ? 'yes' : 'no'}`).join(', ');
  return [
    ['host', `${f.user} (uid ${f.uid ?? '?'}) on ${f.os ?? f.kernel}`],
    ['arch', `${f.machine}, ${f.longBit ?? '?'}-bit userland → ${'arch' in a ? `runtime ${a.arch}` : a.reason}`],
    ['libc', `${f.libc.kind} ${f.libc.version ?? ''} (${f.libc.evidence})`.replace(/\s+\(/, ' (')],
    ['space', `${gib(f.freeKiB)} free in ${f.home}`],
    ['init', `systemd system ${f.init.systemdSystem ? 'yes' : 'no'}, user session ${f.init.systemdUser ? 'yes' : 'no'}, linger ${f.init.linger}, sudo -n ${f.init.sudo ? 'yes' : 'no'}`],
    ['docker', f.docker.serverVersion ? `engine ${f.docker.serverVersion}` : f.docker.path ? `installed, not usable: ${f.docker.error ?? '?'}` : 'not installed'],
    ['python3', f.python.path ? `${f.python.version ?? '?'} at ${f.python.path}, venv ${f.python.venv ? 'yes' : 'no'}` : 'not installed'],
    ['node', f.node.version ? `${f.node.version} at ${f.node.path}` : f.node.error ?? 'not installed'],
    ['tools', `${tools}; sha256 via ${f.tools.sha256}`],
  ];
}

export function formatProbe(r: ProbeReport): string {
  const v = r.verdict;
  const runtime = v.runtime.need === 'host' ? `the host's node ${v.runtime.version}`
    : v.runtime.need === 'push' ? `push ${v.runtime.arch} (${v.runtime.why})` : `none: ${v.runtime.reason}`;
  const rows: Array<[string, string]> = [
    ...factLines(r.facts),
    ['runtime', runtime],
    ...v.strategies.map((s): [string, string] => [s.strategy, s.ok ? s.reason : `cannot: ${s.reason}`]),
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return `${r.slave} (${r.where})\n${rows.map(([k, val]) => `  ${k.padEnd(w)}  ${val}`).join('\n')}\n\n${v.summary}\n`;
}

interface ProbeOptions { stack: string; dir?: string; json?: boolean }

export function registerProbe(program: Command): void {
  program
    .command('probe <slave>')
    .description('what a slave has (arch, libc, init, docker, python3, node, tools) and, per strategy, whether it will work')
    .option('-s, --stack <stack>', 'stack (Pulumi.<stack>.yaml)', 'dev')
    .option('--dir <dir>', 'directory with Pulumi.<stack>.yaml (default: the current directory, else the repository)')
    .option('--json', 'print { slave, where, facts, verdict } as JSON')
    .addHelpText('after', `
Connects the way \`d8 up --engine direct\` does (SSH key from D8_SSH_KEY_PATH / d8:sshKeyPath) and runs
the same read-only probe the deployer runs before every install; nothing is written to the host.
Exit status: 0 when at least one of the slave's strategies will work, 1 when none can, 2 on a config error.

Examples:
  d8 probe desktop --stack prod
  d8 probe pi --stack prod --json | jq .verdict.runtime`)
    .action(async (name: string, o: ProbeOptions) => {
      let deployer: DirectDeployer;
      let slave: SlaveConfig;
      try {
        const { config } = loadStack(o.stack, o.dir);
        slave = findSlave(config, name);
        deployer = new DirectDeployer({ config });
      } catch (err) {
        return fail(err, 2);
      }
      try {
        const report = await deployer.probe(slave);
        process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : formatProbe(report));
        if (!report.verdict.strategies.some((s) => s.ok)) process.exitCode = 1;
      } catch (err) {
        fail(err, 1);
      }
    });
}
