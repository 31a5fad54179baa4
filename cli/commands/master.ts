import { Command, Option } from 'commander';
import { shortCommit } from '../../core/version-info';
import { openFleet, fail, DEFAULT_STACK } from '../fleet-context';
import { chooseEngine, createDeployer, type EngineChoice } from '../../master/deploy/select';
import { adoptRecordedPins } from '../../master/deploy/adopt-pins';
import { createNotifier } from '../../master/notify';
import { MasterDaemon } from '../../master/daemon/daemon';
import { tuningFromEnv } from '../../master/daemon/tuning';
import { FleetControl } from '../../master/control';
import { startTelegramBot } from '../../master/telegram';
import { startDashboard, type Dashboard } from '../../master/dashboard';
import { startRequestDuties } from '../../master/requests/duties';
import { guardMasterProcess } from '../../master/daemon/crash-guard';
import { registerMasterService } from './master-service';

interface MasterOpts { stack: string; interval?: string; engine: EngineChoice; once?: boolean; repo?: string; deployerModule?: string }

export function registerMaster(program: Command): void {
  const master = program
    .command('master')
    .description('run the master daemon: health and version checks every interval, alerts, auto-update and recovery')
    .option('-s, --stack <stack>', 'stack whose d8:slaves to supervise (Pulumi.<stack>.yaml)', DEFAULT_STACK)
    .option('-i, --interval <seconds>', 'seconds between sweeps (default: d8:checkIntervalSeconds, else 30)')
    .addOption(new Option('-e, --engine <engine>', 'how slaves are (re)deployed: pulumi (Automation API), direct (SSH/local installer), auto = pulumi when a Pulumi CLI is on PATH').choices(['auto', 'pulumi', 'direct']).default('auto'))
    .option('--once', 'one sweep (and the actions it triggers), then exit')
    .option('--repo <dir>', 'repository with the stack files and the git history to compare commits with (default: this checkout)')
    .addOption(new Option('--deployer-module <file>', 'a JS module exporting createDeployer(ctx) to use instead of the engines').hideHelp())
    .addHelpText('after', `
Examples:
  d8 master                      # the dev stack: deploys the local slave when missing
  d8 master --stack prod --interval 60
  d8 master --stack prod --once --engine direct

State lives in $D8_HOME (default ~/.d8)/master.db; \`d8 status\` reads it while this runs.
The web dashboard and /metrics: http://127.0.0.1:7500/ (d8:dashboard; see docs/dashboard.md).
SIGTERM stops cleanly: a deploy in flight may finish (bounded), else it is marked interrupted.`)
    .action(async (opts: MasterOpts) => {
      let ctx;
      try {
        ctx = openFleet({ stack: opts.stack, repo: opts.repo }, 'd8-master');
      } catch (err) {
        return fail(err, 2);
      }
      const { config, store, logger, repoDir } = ctx;
      guardMasterProcess(logger);
      try {
        const interval = opts.interval !== undefined ? Number(opts.interval) : config.checkIntervalSeconds;
        if (!Number.isFinite(interval) || interval <= 0) throw new Error(`--interval must be a positive number of seconds, not "${opts.interval}"`);
        const tuning = tuningFromEnv();
        const chosen = chooseEngine(opts.engine);
        logger.info({ engine: chosen.engine, why: chosen.why }, `deploy engine: ${chosen.engine} (${chosen.why})`);
        const deployer = await createDeployer(chosen.engine, { config, repoDir, logger, pins: store.pins.lookup(config.stack) }, opts.deployerModule ?? process.env.D8_DEPLOYER_MODULE);
        await adoptRecordedPins(deployer, store.pins, config.stack, config.slaves.map((s) => s.name), logger);
        const notifier = createNotifier(config, logger);
        let dashboard: Dashboard | null = null;
        const daemon = new MasterDaemon({ config, store, deployer, notifier, logger, tuning, repoDir, intervalMs: interval * 1000, once: opts.once,
          onSweep: (s) => dashboard?.observeSweep(s.durationMs) });
        const control = new FleetControl({ config, store, repoDir, supervisor: daemon.supervisor });
        // The bot (when a Telegram token is configured) stops with the notifier when the daemon stops.
        if (!opts.once) startTelegramBot(notifier, { config, control });
        if (!opts.once) dashboard = await startDashboard({ config, store, control, repoDir, logger });
        const duties = opts.once ? null : startRequestDuties({ store, config, logger });
        if (opts.once) {
          await daemon.start();
          await daemon.stop('--once');
          const st = store.slaves.list(config.stack);
          process.stdout.write(`master ${shortCommit(daemon.version.current.commit)}: ` + st.map((s) => `${s.name}=${s.state}`).join(' ') + '\n');
          ctx.close();
          return;
        }
        await new Promise<void>((resolve) => {
          const onSignal = (sig: string) => {
            duties?.stop();
            void Promise.resolve(dashboard?.stop()).then(() => daemon.stop(sig)).then(resolve, (err) => { logger.error({ err: (err as Error).message }, 'error while stopping'); resolve(); });
          };
          process.once('SIGTERM', () => onSignal('SIGTERM'));
          process.once('SIGINT', () => onSignal('SIGINT'));
          daemon.start().catch((err) => { logger.error({ err: (err as Error).message }, 'daemon failed to start'); process.exitCode = 1; void Promise.resolve(dashboard?.stop()).finally(resolve); });
        });
        ctx.close();
        process.exit(process.exitCode ?? 0);
      } catch (err) {
        ctx.close();
        fail(err, 1);
      }
    });
  master.enablePositionalOptions();
  registerMasterService(master);
}
