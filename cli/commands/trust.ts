import readline from 'readline';
import type { Command } from 'commander';
import { parseHostKey, type HostKey } from '../../core/host-key';
import { KnownHosts } from '../../core/known-hosts';
import { KeyscanError, scanHostKey } from '../../core/ssh-keyscan';
import { findSlave, loadFleetConfig } from '../../core/stack-config';
import { fail } from '../fleet-context';
import { resolveStackDir } from './up';

interface TrustOptions { stack: string; dir?: string; yes?: boolean; json?: boolean }

export type TrustOutcome = 'recorded' | 'replaced' | 'unchanged' | 'declined' | 'pinned';

export interface TrustReport {
  slave: string;
  host: string;
  port: number;
  known_hosts: string;
  recorded: string | null;
  offered: string;
  outcome: TrustOutcome;
}

const show = (k: HostKey): string => `${k.type} ${k.fingerprint}`;

function ask(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      resolve(/^y(es)?$/i.test(answer.trim()));
    });
    rl.on('close', () => resolve(false));
  });
}

export function registerTrust(program: Command): void {
  program
    .command('trust <slave>')
    .description('accept the SSH host key a slave offers now (after a reinstall changed it), recording it in D8_HOME/known_hosts')
    .option('-s, --stack <stack>', 'stack (Pulumi.<stack>.yaml)', 'dev')
    .option('--dir <dir>', 'directory with Pulumi.<stack>.yaml (default: the current directory, else the repository)')
    .option('-y, --yes', 'do not ask: trust the key offered now (for scripts; check its fingerprint first)')
    .option('--json', 'print { slave, host, port, known_hosts, recorded, offered, outcome } as JSON')
    .addHelpText('after', `
The first deploy to a slave records its SSH host key (trust on first use); later deploys, on both
engines, refuse a host whose key changed (exit status 13, kind host_key). When the change is expected
(the host was reinstalled), compare the fingerprint shown here with the one the host prints on its
console (\`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\`), then confirm. Only the host key is
fetched: no credential is sent. A slave with \`hostKey\` in the stack is pinned there: edit the stack.
Exit status: 0 trusted (or already trusted), 1 declined or the host cannot be reached, 2 config error.

Examples:
  d8 trust desktop --stack prod
  d8 trust desktop --stack prod --yes --json`)
    .action(async (name: string, o: TrustOptions) => {
      let report: TrustReport;
      try {
        const config = loadFleetConfig(resolveStackDir(o.stack, o.dir), o.stack, process.env, { requireSshKey: false });
        const slave = findSlave(config, name);
        if (slave.local) throw new Error(`${slave.name} is host: local: there is no SSH host key to trust`);
        const knownHosts = KnownHosts.forEnv();
        const recorded = knownHosts.lookup(slave.host, slave.sshPort);
        const offered = await scanHostKey(slave.host, slave.sshPort, { type: recorded?.key.type });
        report = {
          slave: slave.name, host: slave.host, port: slave.sshPort, known_hosts: knownHosts.file,
          recorded: recorded ? show(recorded.key) : null, offered: show(offered), outcome: 'unchanged',
        };
        const out = (s: string) => { if (!o.json) process.stdout.write(s); };
        const pinned = slave.hostKey ? parseHostKey(slave.hostKey) : null;
        if (pinned) report.recorded = show(pinned);
        out(`${slave.name} (${slave.host}:${slave.sshPort})\n  ${pinned ? 'pinned  ' : 'recorded'}  ${report.recorded ?? 'none'}\n  offered   ${report.offered}\n`);
        if (pinned) {
          report.outcome = 'pinned';
          if (pinned.blob.equals(offered.blob)) {
            out(`\n${slave.name} is pinned by hostKey in the stack config, and the host offers that key.\n`);
          } else {
            out(`\n${slave.name} is pinned by hostKey in the stack config (${report.recorded}): d8 trust does not override it; edit hostKey of ${slave.name} in Pulumi.${o.stack}.yaml.\n`);
            process.exitCode = 1;
          }
        } else if (recorded && recorded.key.blob.equals(offered.blob)) {
          out(`\nalready trusted: nothing to do.\n`);
        } else {
          const yes = o.yes || (process.stdin.isTTY
            ? await ask(`\nTrust ${report.offered} for ${slave.name}? Check it on the host first (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub). [y/N] `)
            : false);
          if (!yes) {
            report.outcome = 'declined';
            if (!o.yes && !process.stdin.isTTY) process.stderr.write('d8: not trusted: stdin is not a terminal to confirm on; pass --yes to trust the key shown above\n');
            else out('not trusted: nothing changed.\n');
            process.exitCode = 1;
          } else {
            knownHosts.replace(slave.host, slave.sshPort, offered, slave.name);
            report.outcome = recorded ? 'replaced' : 'recorded';
            out(`trusted: ${knownHosts.file} now holds ${report.offered} for ${slave.name}.\n`);
          }
        }
      } catch (err) {
        return fail(err, err instanceof KeyscanError ? 1 : 2);
      }
      if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    });
}
