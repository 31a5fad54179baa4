import fs from 'fs';
import path from 'path';
import { Command, Option } from 'commander';
import { createLogger } from '../../core/logger';
import { fleetSecrets } from '../../core/fleet-secrets';
import { repoRoot } from '../../core/paths';
import { findSlave, loadFleetConfig, stackFilePath, type FleetConfig, type SlaveConfig } from '../../core/stack-config';
import type { DeployResult, Deployer } from '../../master/deploy/deployer';
import { DirectDeployer, type DeployProgress } from '../../master/deploy/direct';
import { chooseEngine, createDeployer, type EngineChoice } from '../../master/deploy/select';
import { mapBounded } from '../../master/limit';
import { SWARM_NEEDS_PULUMI } from '../../master/deploy/swarm/needs-pulumi';
import { DeployCoordinator, describeHolder } from '../../master/deploy/coordinator';
import { openStore } from '../../master/store';
import { ReleaseArchive } from '../../master/rollout/release-archive';
import { deployExitCode, exitCodesHelp } from '../exit-codes';

/** The directory holding Pulumi.<stack>.yaml: --dir, else the current directory if it has one, else the repository. */
export function resolveStackDir(stack: string, dir?: string): string {
  if (dir) return path.resolve(dir);
  if (fs.existsSync(stackFilePath(process.cwd(), stack))) return process.cwd();
  return repoRoot();
}

export function loadStack(stack: string, dir?: string): { config: FleetConfig; dir: string } {
  const d = resolveStackDir(stack, dir);
  return { config: loadFleetConfig(d, stack), dir: d };
}

interface UpOptions {
  stack: string;
  dir?: string;
  engine: EngineChoice;
  slave?: string[];
  force?: boolean;
  wait: boolean;
  concurrency: string;
  json?: boolean;
  healthTimeout?: string;
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

function printSummary(results: DeployResult[]): void {
  const rows = results.map((r) => [
    r.slave,
    { deployed: 'deployed', up_to_date: 'up to date', failed: 'FAILED' }[r.status],
    r.strategy ?? '-',
    r.commit ? r.commit.slice(0, 7) : '-',
    secs(r.durationMs),
    r.buildLogPath ?? '-',
  ]);
  const head = ['slave', 'result', 'strategy', 'commit', 'time', 'build log'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  process.stdout.write(`\n${line(head)}\n${rows.map(line).join('\n')}\n`);
  for (const r of results) if (r.error) process.stdout.write(`\n${r.slave}: ${r.error}\n`);
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('deploy (or redeploy) the agent on the fleet\'s slaves: Docker, then venv, then native')
    .option('-s, --stack <stack>', 'stack to deploy (Pulumi.<stack>.yaml)', 'dev')
    .option('--dir <dir>', 'directory with Pulumi.<stack>.yaml (default: the current directory, else the repository)')
    .addOption(new Option('-e, --engine <engine>', 'pulumi (Automation API), direct (SSH, no Pulumi CLI needed), or auto: pulumi when a Pulumi CLI is installed')
      .choices(['auto', 'pulumi', 'direct']).default('auto'))
    .option('--slave <name...>', 'only these slaves (default: every slave of the stack)')
    .option('-f, --force', 'redeploy even where the agent already runs this commit')
    .option('--no-wait', 'when another process (d8 up, d8 retry, the daemon) is deploying a slave, fail at once for it (exit status 18, kind locked) instead of waiting')
    .option('-c, --concurrency <n>', 'slaves deployed at once', '4')
    .option('--health-timeout <seconds>', 'per install attempt: how long to wait for /api/health (install.sh --health-timeout)')
    .option('--json', 'print the results as JSON on stdout (progress still goes to stderr)')
    .addHelpText('after', `
Secrets come from the environment when set: D8_SSH_KEY_PATH or D8_SSH_PRIVATE_KEY (or the stack's
d8:sshKeyPath / d8:sshPrivateKey). Each slave gets an agent token of its own ($D8_HOME/tokens, 0600);
in swarm mode each slave's service gets its own as a docker secret. A fleet token (D8_AGENT_TOKEN /
d8:agentToken) is not needed; it opens agents deployed before per-slave tokens until they are
redeployed or rotated.
Every deploy writes a build log (secrets replaced by ***) under $D8_HOME/build_logs (default ~/.d8).
One deploy per slave at a time: while another process (d8 up, d8 retry/update, the master daemon)
deploys a slave, this one waits and says who holds it ("waiting for the deploy by d8 master (daemon)
(pid 4242, since …)"); with --no-wait it fails for that slave at once instead (kind locked). A holder
that died (SIGKILL, crash) is noticed by its pid and does not block anyone.

${exitCodesHelp()}

Examples:
  d8 up --stack prod --engine direct
  d8 up --stack prod --engine direct --slave pc-salon --force
  d8 up --stack prod --engine pulumi --slave vps      (creates the stack and the slave when new)
  d8 up --stack dev --json | jq '.[].strategy'`)
    .action(async (o: UpOptions) => {
      const concurrency = Number(o.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency must be a whole number >= 1, not "${o.concurrency}"`);
      const healthTimeout = o.healthTimeout === undefined ? undefined : Number(o.healthTimeout);
      if (healthTimeout !== undefined && (!Number.isInteger(healthTimeout) || healthTimeout < 1)) {
        throw new Error(`--health-timeout must be a whole number of seconds >= 1, not "${o.healthTimeout}"`);
      }
      const { config, dir } = loadStack(o.stack, o.dir);
      const slaves: SlaveConfig[] = o.slave?.length ? o.slave.map((n) => findSlave(config, n)) : config.slaves;
      if (!slaves.length) throw new Error(`stack ${o.stack} has no slaves: add some to d8:slaves in ${stackFilePath(dir, o.stack)}`);

      const { engine, why } = chooseEngine(o.engine);
      if (config.swarm && engine === 'direct') throw new Error(`stack ${o.stack}: ${SWARM_NEEDS_PULUMI}`);
      const logger = createLogger({ name: 'd8-up', secrets: fleetSecrets(config) });
      const say = (s: string): void => { process.stderr.write(`${s}\n`); };
      say(`d8 up: stack ${o.stack}, ${slaves.length} slave(s), engine ${engine} (${why})`);

      const store = openStore(undefined, fleetSecrets(config));
      const pins = store.pins.lookup(config.stack);
      let deployer: Deployer;
      const width = Math.max(...slaves.map((s) => s.name.length));
      // Both deployers probe every host first and say what they found, then the base image's path.
      const onProgress = (p: DeployProgress): void => say(`[${p.slave.padEnd(width)}] ${p.phase.padEnd(9)} ${p.message}`);
      if (engine === 'direct') {
        deployer = new DirectDeployer({ config, repoDir: repoRoot(), logger, healthTimeoutSeconds: healthTimeout, onProgress, pins });
        await (deployer as DirectDeployer).bundle();
      } else {
        deployer = await createDeployer(engine, { config, repoDir: dir, logger, onProgress, pins });
      }

      const deploys = new DeployCoordinator(config.stack, deployer, store.deploys, logger, {
        locks: store.deployLocks, holder: 'd8 up',
        onWait: (slave, h) => say(`[${slave}] waiting for the deploy by ${describeHolder(h)} to finish (--no-wait to fail instead)…`),
      });
      // What `d8 up` deploys is kept as a release too (issue 14): a later rollback can go back to it.
      const archive = new ReleaseArchive({ stack: config.stack, store, home: path.dirname(store.file), logger });
      deploys.useReleases({ bundleFor: () => null, deployed: (slave, bundle) => archive.deployed(slave.name, bundle) });
      const results = await mapBounded(slaves, concurrency, async (s) => {
        if (engine !== 'direct') say(`[${s.name}] deploying with ${engine}…`);
        const r = await deploys.deploy(s, { force: !!o.force, reason: 'manual', noWait: !o.wait });
        if (engine === 'direct' && r.errorKind === 'locked') say(`[${s.name}] not deployed: ${r.error ?? 'locked'}`);
        if (engine !== 'direct') say(`[${s.name}] ${r.ok ? `${r.status === 'up_to_date' ? 'up to date' : 'deployed'} (${r.strategy ?? '-'})` : `failed (${r.errorKind ?? 'engine'}): ${r.error ?? 'unknown error'}`}`);
        return r;
      }).finally(() => store.close());
      if (o.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
      else printSummary(results);
      const failed = results.filter((r) => r.status === 'failed');
      if (failed.length) {
        say(`d8 up: ${failed.length} of ${results.length} slave(s) failed (${failed.map((r) => `${r.slave}: ${r.errorKind ?? 'engine'}`).join(', ')}); the build logs above have every command`);
        process.exitCode = deployExitCode(results);
      }
    });
}
