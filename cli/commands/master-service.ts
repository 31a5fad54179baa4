/** `d8 master install` / `d8 master uninstall`: this machine's master as a systemd service. */
import { Command } from 'commander';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { repoRoot } from '../../core/paths';
import { shQuote } from '../../core/shell-quote';
import { tuningFromEnv } from '../../master/daemon/tuning';
import {
  DEFAULT_HEAP_MB, DEFAULT_UNIT_NAME, envFilePath, renderEnvFile, renderMasterUnit, UnitSpecError, type MasterUnitSpec,
} from '../master-service/unit';
import {
  asRoot, checkNativeModules, chooseNode, ensureEnvFile, EXIT_NEEDS_ROOT, EXIT_NOT_POSSIBLE, hasSystemd, homeOf, idsOf,
  invokingUser, privilege, ServiceInstallError, type Privilege,
} from '../master-service/host';

const UNIT_DIR = '/etc/systemd/system';

interface InstallOpts { stack: string; user?: string; d8Home?: string; heapMb: string; nodeVersion?: string; distUrl?: string; dryRun?: boolean; json?: boolean }
interface UninstallOpts { dryRun?: boolean; json?: boolean }

const EXIT_HELP = `
Exit status:
  0   done (or --dry-run printed what it would do)
  2   a bad option (stack name, heap size, a path systemd cannot hold)
  ${EXIT_NEEDS_ROOT}   not root and no passwordless sudo: it prints the command to run as root
  ${EXIT_NOT_POSSIBLE}   this machine cannot run it as a service (no systemd, no usable node, better-sqlite3 does not load, systemctl failed)`;

function out(json: boolean | undefined, human: string[], data: object): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${human.join('\n')}\n`);
}

function failWith(err: unknown, json: boolean | undefined): never {
  const code = err instanceof ServiceInstallError ? err.exitCode : err instanceof UnitSpecError ? 2 : 1;
  const message = (err as Error).message;
  if (json) process.stdout.write(`${JSON.stringify({ ok: false, error: message, exitCode: code }, null, 2)}\n`);
  process.stderr.write(`d8: ${message}\n`);
  process.exit(code);
}

/** What to run as root instead, with the options that make it do the same for this user. */
function asRootCommand(args: string[]): string {
  // Plain words stay unquoted so the line reads like one a person would type.
  const word = (w: string): string => (/^[A-Za-z0-9_./@:=+-]+$/.test(w) ? w : shQuote(w));
  return `sudo ${[process.execPath, path.join(repoRoot(), 'bin', 'd8.js'), ...args].map(word).join(' ')}`;
}

function needRoot(p: Privilege, args: string[]): never {
  throw new ServiceInstallError(`${(p as { why: string }).why}: installing a system unit needs root. Run:\n  ${asRootCommand(args)}`, EXIT_NEEDS_ROOT);
}

/** Through a private temporary file: root's `install` copies it into place with mode 0644. */
function writeUnitFile(priv: Privilege, unitPath: string, unit: string): void {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-unit-'));
  try {
    const file = path.join(tmp, path.basename(unitPath));
    fs.writeFileSync(file, unit, { mode: 0o644 });
    fs.chmodSync(tmp, 0o755);
    asRoot(priv, ['install', '-m', '0644', file, unitPath]);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function install(o: InstallOpts): Promise<void> {
  const say = (m: string): void => { if (!o.json) process.stderr.write(`${m}\n`); };
  const user = o.user ?? invokingUser();
  const d8Home = path.resolve(o.d8Home ?? (user === os.userInfo().username && process.env.D8_HOME ? process.env.D8_HOME : path.join(homeOf(user), '.d8')));
  const checkout = repoRoot();
  const heapMb = Number(o.heapMb);
  const engines = (JSON.parse(fs.readFileSync(path.join(checkout, 'package.json'), 'utf8')) as { engines?: { node?: string } }).engines?.node ?? '>=20';
  const unitName = DEFAULT_UNIT_NAME;
  const unitPath = `${UNIT_DIR}/${unitName}`;
  const rootArgs = ['master', 'install', '--stack', o.stack, '--user', user, '--d8-home', d8Home, '--heap-mb', String(heapMb)];
  const priv: Privilege = o.dryRun ? { kind: 'root' } : privilege();
  if (!o.dryRun && !hasSystemd()) throw new ServiceInstallError('systemd is not running on this machine (no /run/systemd/system): run `d8 master --stack ' + o.stack + '` under your own supervisor', EXIT_NOT_POSSIBLE);
  if (priv.kind === 'none') needRoot(priv, rootArgs);
  if (priv.kind === 'sudo' && user !== os.userInfo().username) needRoot({ kind: 'none', why: `the service user ${user} is not you` }, rootArgs);
  const node = await chooseNode({ engines, d8Home, nodeVersion: o.nodeVersion, nodeDistUrl: o.distUrl, dryRun: !!o.dryRun, say });
  const spec: MasterUnitSpec = { stack: o.stack, node: node.path, checkout, d8Home, user, heapMb, stopGraceMs: tuningFromEnv().stopGraceMs };
  const unit = renderMasterUnit(spec);
  const envFile = envFilePath(d8Home);
  const follow = `journalctl -u ${unitName} -f`;
  if (o.dryRun) {
    const envText = fs.existsSync(envFile) ? null : renderEnvFile();
    out(o.json, [`# would write ${unitPath}:`, unit, envText ? `# would create ${envFile} (mode 0600):\n${envText}` : `# would keep ${envFile} as it is`,
      `# then: systemctl daemon-reload && systemctl enable ${unitName} && systemctl restart ${unitName}`],
    { ok: true, dryRun: true, unitPath, unit, envFile, envFileText: envText, node, spec });
    return;
  }
  if (!fs.existsSync(path.join(checkout, 'dist', 'cli', 'main.js'))) throw new ServiceInstallError(`${checkout}/dist is missing: run npm run build there first`, EXIT_NOT_POSSIBLE);
  const broken = checkNativeModules(node.path, checkout);
  if (broken) throw new ServiceInstallError(broken, EXIT_NOT_POSSIBLE);
  const envCreated = ensureEnvFile(d8Home, envFile, renderEnvFile(), idsOf(user));
  writeUnitFile(priv, unitPath, unit);
  asRoot(priv, ['systemctl', 'daemon-reload']);
  asRoot(priv, ['systemctl', 'enable', unitName]);
  // restart, not start: installing again (a new node, another stack) must replace a running daemon.
  asRoot(priv, ['systemctl', 'restart', unitName]);
  asRoot(priv, ['systemctl', 'is-active', '--quiet', unitName]);
  out(o.json, [
    `wrote ${unitPath} (runs ${node.path} ${node.version} ${node.source === 'running' ? '(the node running this command)' : '(the pinned runtime)'} as ${user}, D8_HOME=${d8Home}, heap cap ${heapMb} MiB)`,
    envCreated ? `created ${envFile} (mode 0600): put the stack's secrets there, then systemctl restart ${unitName}` : `kept ${envFile} as it was (mode 0600)`,
    `enabled and started ${unitName}${priv.kind === 'sudo' ? ' (with sudo)' : ''}`,
    `follow the log:  ${priv.kind === 'sudo' ? 'sudo ' : ''}${follow}`,
    `status:          d8 status --stack ${o.stack}`,
  ], { ok: true, unitPath, unitName, envFile, envCreated, node, user, d8Home, stack: o.stack, follow });
}

function uninstall(o: UninstallOpts): void {
  const unitName = DEFAULT_UNIT_NAME;
  const unitPath = `${UNIT_DIR}/${unitName}`;
  const present = fs.existsSync(unitPath);
  if (o.dryRun) {
    out(o.json, [present ? `would stop and disable ${unitName}, remove ${unitPath}, systemctl daemon-reload` : `${unitPath} does not exist: nothing to do`],
      { ok: true, dryRun: true, unitPath, present });
    return;
  }
  if (!present) {
    out(o.json, [`${unitPath} does not exist: nothing to do`], { ok: true, unitPath, removed: false });
    return;
  }
  const priv = privilege();
  if (priv.kind === 'none') needRoot(priv, ['master', 'uninstall']);
  asRoot(priv, ['systemctl', 'disable', '--now', unitName]);
  asRoot(priv, ['rm', '-f', unitPath]);
  asRoot(priv, ['systemctl', 'daemon-reload']);
  out(o.json, [`stopped and disabled ${unitName}, removed ${unitPath}`, 'D8_HOME (the store, master.env) is left as it was'],
    { ok: true, unitPath, removed: true });
}

export function registerMasterService(master: Command): void {
  master
    .command('install')
    .description('make this machine\'s master a systemd service (root or passwordless sudo): writes the unit and a 0600 env file for the secrets, enables and starts it')
    .option('-s, --stack <stack>', 'stack the service supervises', 'prod')
    .option('--user <user>', 'user the daemon runs as (default: you; under sudo, the user who ran sudo)')
    .option('--d8-home <dir>', 'the service\'s D8_HOME (default: $D8_HOME, else ~user/.d8)')
    .option('--heap-mb <mib>', 'V8 heap cap of the master\'s node (an argument of that node only)', String(DEFAULT_HEAP_MB))
    .option('--node-version <version>', 'pinned runtime to use when the running node is below the engines floor')
    .option('--dist-url <url>', 'mirror for that runtime (default https://nodejs.org/dist)')
    .option('--dry-run', 'print the unit and the env file it would write; change nothing')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `
The unit runs the node that runs this command when it meets package.json's engines floor, else the
master's pinned Node.js runtime for this CPU (fetched, checked against SHASUMS256.txt, unpacked under
D8_HOME/runtimes/master). Paths are absolute; secrets go in D8_HOME/master.env, created once (0600)
and never overwritten. TimeoutStopSec is the daemon's SIGTERM grace (D8_MASTER_TUNING stopGraceMs,
default 60 s) plus 30 s.

Examples:
  d8 master install --stack prod --dry-run
  d8 master install --stack prod            # as a user with sudo, or as root
  sudo d8 master install --stack prod --user pi
${EXIT_HELP}`)
    .action(async (o: InstallOpts) => { await install(o).catch((err) => failWith(err, o.json)); });
  master
    .command('uninstall')
    .description('stop, disable and remove the master\'s systemd unit (D8_HOME is kept)')
    .option('--dry-run', 'say what it would do')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', EXIT_HELP)
    .action((o: UninstallOpts) => { try { uninstall(o); } catch (err) { failWith(err, o.json); } });
}
