/**
 * The master's systemd unit and its environment file, rendered from a spec. Pure: `d8 master install`
 * writes what these return, `--dry-run` prints it, and scripts/systemd/d8-master.service is generated
 * from the example spec below (tests/unit check it has not drifted), so there is one source of truth.
 */
export interface MasterUnitSpec {
  /** The stack the daemon supervises (`d8 master --stack`). */
  stack: string;
  /** Absolute path of the node binary the unit runs. */
  node: string;
  /** Absolute path of the checkout (bin/d8.js, dist/, the stack files). */
  checkout: string;
  /** Absolute D8_HOME of the service (store, logs, runtimes, master.env). */
  d8Home: string;
  /** The user the daemon runs as. */
  user: string;
  /** V8 old-space cap in MiB, passed to the master's node only (never NODE_OPTIONS). */
  heapMb: number;
  /** The daemon's own SIGTERM grace (tuning.stopGraceMs): the unit's stop timeout must exceed it. */
  stopGraceMs: number;
}

/** Beyond the grace: the supervisor's settle (≤ 5 s), the dashboard and the store closing. */
export const STOP_MARGIN_SECONDS = 30;
export const DEFAULT_HEAP_MB = 96;
export const DEFAULT_UNIT_NAME = 'd8-master.service';

export function envFilePath(d8Home: string): string {
  return `${d8Home}/master.env`;
}

export function stopTimeoutSeconds(stopGraceMs: number): number {
  return Math.ceil(stopGraceMs / 1000) + STOP_MARGIN_SECONDS;
}

/** systemd splits ExecStart= on whitespace and treats `"` `\` `%` `$` specially: refuse such paths. */
const PLAIN = /^[A-Za-z0-9_./@:+-]+$/;

export class UnitSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnitSpecError';
  }
}

function checkSpec(s: MasterUnitSpec): void {
  for (const [what, p] of [['node', s.node], ['checkout', s.checkout], ['D8_HOME', s.d8Home]] as const) {
    if (!p.startsWith('/')) throw new UnitSpecError(`${what} must be an absolute path, not "${p}"`);
    if (!PLAIN.test(p)) throw new UnitSpecError(`${what} "${p}" has characters a systemd unit line cannot hold unquoted (spaces, quotes, %, $): use a path without them`);
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(s.stack)) throw new UnitSpecError(`stack "${s.stack}" is not a stack name`);
  if (!/^[a-z_][a-z0-9_-]*\$?$/i.test(s.user)) throw new UnitSpecError(`user "${s.user}" is not a user name`);
  if (!Number.isInteger(s.heapMb) || s.heapMb < 32) throw new UnitSpecError(`heap cap ${s.heapMb} MiB: must be a whole number ≥ 32`);
  if (!Number.isInteger(s.stopGraceMs) || s.stopGraceMs < 0) throw new UnitSpecError(`stop grace ${s.stopGraceMs} ms: must be a whole number ≥ 0`);
}

export function renderMasterUnit(s: MasterUnitSpec): string {
  checkSpec(s);
  const grace = Math.ceil(s.stopGraceMs / 1000);
  return `# D8 Fleet master daemon, written by \`d8 master install\` (see docs/raspberry-pi.md).
# Remove with \`d8 master uninstall\`. Secrets live in ${envFilePath(s.d8Home)} (mode 0600), never here.
[Unit]
Description=D8 Fleet master daemon (stack ${s.stack})
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=${s.user}
WorkingDirectory=${s.checkout}
Environment=D8_HOME=${s.d8Home}
Environment=NODE_ENV=production
EnvironmentFile=${envFilePath(s.d8Home)}
# The heap cap is an argument of the master's node only: NODE_OPTIONS would also cap every node the
# master starts (the Pulumi program's language host included).
ExecStart=${s.node} --max-old-space-size=${s.heapMb} ${s.checkout}/bin/d8.js master --stack ${s.stack}
# SIGTERM to the daemon only (mixed): an in-flight deploy's ssh/pulumi children keep running while
# the daemon lets it finish (${grace} s grace) or marks it interrupted, then exits 0.
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec=${stopTimeoutSeconds(s.stopGraceMs)}
# always, not on-failure: the master should never be down unless systemctl stopped it, and a stray
# SIGTERM or an unexpected clean exit would otherwise leave the fleet unsupervised. systemctl stop
# is never undone by Restart=.
Restart=always
RestartSec=10
NoNewPrivileges=true
PrivateTmp=true
ProtectSystem=full

[Install]
WantedBy=multi-user.target
`;
}

/** The environment-file keys the master reads; the file is created with every line commented out. */
export const ENV_FILE_KEYS: ReadonlyArray<readonly [string, string]> = [
  ['D8_SSH_KEY_PATH', 'private key the master deploys slaves with (or d8:sshKeyPath in the stack)'],
  ['PULUMI_CONFIG_PASSPHRASE', 'passphrase of the stack\'s secrets (engine pulumi)'],
  ['TELEGRAM_TOKEN', 'Telegram bot token for alerts'],
  ['TELEGRAM_CHAT_ID', 'chat the alerts go to'],
  ['D8_DASHBOARD_TOKEN', 'token for the dashboard\'s control actions'],
  ['D8_LOG_LEVEL', 'info (default), debug, warn'],
];

export function renderEnvFile(): string {
  return ['# Secrets and settings of the D8 Fleet master (systemd EnvironmentFile; keep it mode 0600).',
    '# One KEY=value a line, no quotes needed; restart the service after editing.',
    ...ENV_FILE_KEYS.map(([k, what]) => `# ${what}\n#${k}=`), ''].join('\n');
}

/** The example the repository ships (scripts/systemd/d8-master.service): a Pi user, node from a tarball. */
export const EXAMPLE_SPEC: MasterUnitSpec = {
  stack: 'prod', node: '/usr/local/bin/node', checkout: '/home/pi/d8-fleet', d8Home: '/home/pi/.d8', user: 'pi',
  heapMb: DEFAULT_HEAP_MB, stopGraceMs: 60_000,
};

/** Whether `version` (process.version) meets the package's engines floor (`>=N`). */
export function meetsEnginesFloor(version: string, engines: string): boolean {
  const floor = /^>=\s*(\d+)(?:\.(\d+))?/.exec(engines.trim());
  const v = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (!floor || !v) return false;
  const [maj, min] = [Number(v[1]), Number(v[2])];
  const [fMaj, fMin] = [Number(floor[1]), Number(floor[2] ?? 0)];
  return maj > fMaj || (maj === fMaj && min >= fMin);
}
