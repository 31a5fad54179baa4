/**
 * The web dashboard of `d8 master` (d8:dashboard, default 127.0.0.1:7500) and its /metrics.
 * startDashboard wires the pieces to the daemon's store and FleetControl; it never stops the
 * daemon: a port in use or a bad token is logged with the fix and the master supervises on.
 */
import type { Logger } from '../../core/logger';
import { DashboardConfigSchema, type FleetConfig } from '../../core/stack-config';
import { fleetRedactor } from '../../core/fleet-secrets';
import type { FleetControl } from '../control';
import type { Store } from '../store';
import { isLoopbackBind, resolveDashboardToken } from './auth';
import { GitDistance } from './git-distance';
import { LiveHub } from './live';
import { DashboardMetrics } from './metrics';
import { DashboardPages } from './pages';
import { DashboardServer } from './server';
import { StoreWatch } from './store-watch';
import { MasterApi } from '../api/master-api';
import { TaskRouter } from '../tasks/router';

export interface DashboardOptions {
  config: FleetConfig;
  store: Store;
  control: FleetControl;
  repoDir: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface Dashboard {
  url: string;
  /** Feed a finished sweep's duration to /metrics. */
  observeSweep(durationMs: number): void;
  stop(): Promise<void>;
}

export async function startDashboard(o: DashboardOptions): Promise<Dashboard | null> {
  const cfg = o.config.dashboard ?? DashboardConfigSchema.parse({});
  const log = o.logger.child({ component: 'dashboard' });
  if (!cfg.enabled) {
    log.info('dashboard disabled (d8:dashboard.enabled: false)');
    return null;
  }
  const env = o.env ?? process.env;
  const loopback = isLoopbackBind(cfg.bind);
  let token: string | null = null;
  let tokenHint = '';
  let tokenWhere = '';
  if (!loopback) {
    try {
      const t = resolveDashboardToken(env);
      token = t.token;
      tokenHint = t.file ? 'It is in the file dashboard-token in the master\'s D8_HOME (readable by the master\'s user only).' : 'It is the D8_DASHBOARD_TOKEN the master was started with.';
      tokenWhere = t.file ? `${t.file}; read it with: cat ${t.file}` : 'D8_DASHBOARD_TOKEN';
      if (t.source === 'generated') log.warn({ file: t.file }, `dashboard token generated into ${t.file} (mode 0600); read it with: cat ${t.file}`);
    } catch (err) {
      log.error({ err: (err as Error).message }, `dashboard not started: ${(err as Error).message}`);
      return null;
    }
  }
  const redactor = fleetRedactor(o.config, env).with(token);
  const distance = new GitDistance(o.repoDir);
  const watch = new StoreWatch(o.store.db, o.config.stack);
  const live = new LiveHub(watch);
  const metrics = new DashboardMetrics({ control: o.control, db: o.store.db, stack: o.config.stack, distance });
  watch.onChecks((c) => metrics.observeChecks(c));
  const pages = new DashboardPages({ config: o.config, store: o.store, control: o.control, distance, redactor, logger: log });
  const tasks = new TaskRouter({ config: o.config, store: o.store, logger: o.logger.child({ component: 'tasks' }) });
  const server = new DashboardServer({
    bind: cfg.bind, port: cfg.port, trustProxy: cfg.trustProxy, token, tokenHint, stack: o.config.stack,
    masterCommit: () => o.control.status().master.commit, pages, metrics, live, logger: log,
    api: new MasterApi({ config: o.config, store: o.store, logger: o.logger.child({ component: 'api' }), trustProxy: cfg.trustProxy, tasks }),
  });
  try {
    await server.listen();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? `port ${cfg.port} on ${cfg.bind} is in use` : e.code === 'EADDRNOTAVAIL' ? `${cfg.bind} is not an address of this host` : e.message;
    log.error({ err: e.message }, `dashboard not started: ${why}; set d8:dashboard.port / d8:dashboard.bind, or d8:dashboard.enabled: false`);
    live.close();
    tasks.close();
    return null;
  }
  watch.start();
  const host = cfg.bind.includes(':') ? `[${cfg.bind}]` : cfg.bind;
  const url = `http://${host}:${cfg.port}/`;
  log.info({ url, login: !loopback }, loopback ? `dashboard on ${url} (loopback: no login)` : `dashboard on ${url}: log in with the dashboard token (${tokenWhere})`);
  return {
    url,
    observeSweep: (ms) => metrics.observeSweep(ms),
    stop: async () => {
      watch.stop();
      live.close();
      await server.close();
      tasks.close();
    },
  };
}
