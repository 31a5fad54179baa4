/**
 * GET /metrics in the Prometheus text format, with prom-client on a private registry (it owns the
 * format's escaping, histogram buckets and content type, and gives the process metrics for free).
 * Fleet gauges are read from the store at scrape time, so they are true whoever wrote the store;
 * check latency and sweep durations are observed as they happen (counters from this process's start).
 */
import client from 'prom-client';
import type { FleetControl } from '../control';
import type { Db } from '../store/db';
import { stmt } from '../store/db';
import { SLAVE_STATES } from '../checker/state-machine';
import { DRIFT_CLASSES } from '../checker/drift';
import { REQUEST_STATUSES } from '../../core/requests';
import type { GitDistance } from './git-distance';
import type { NewCheck } from './store-watch';
import { answering } from './states';

export interface MetricsDeps {
  control: FleetControl;
  db: Db;
  stack: string;
  distance: GitDistance;
}


export class DashboardMetrics {
  readonly registry = new client.Registry();
  private readonly checkLatency: client.Histogram<'slave'>;
  private readonly checks: client.Counter<'slave' | 'result'>;
  private readonly sweepDuration: client.Histogram<string>;

  constructor(private readonly d: MetricsDeps) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry });
    const slaves = () => this.d.control.status().slaves;

    new client.Gauge({ name: 'd8_master_info', help: 'The master: 1, labelled with its commit and stack', labelNames: ['stack', 'commit'], registers,
      collect() { this.reset(); this.set({ stack: d.stack, commit: d.control.status().master.commit ?? 'unknown' }, 1); } });
    new client.Gauge({ name: 'd8_slave_up', help: 'Whether the slave\'s agent answered its last check (healthy or version_mismatch)', labelNames: ['slave'], registers,
      collect() { this.reset(); for (const s of slaves()) this.set({ slave: s.name }, answering(s.state) ? 1 : 0); } });
    new client.Gauge({ name: 'd8_slave_state', help: 'The slave\'s state: 1 for the current one, 0 for the others', labelNames: ['slave', 'state'], registers,
      collect() { this.reset(); for (const s of slaves()) for (const st of SLAVE_STATES) this.set({ slave: s.name, state: st }, s.state === st ? 1 : 0); } });
    new client.Gauge({ name: 'd8_slave_drift', help: 'The slave\'s commit against the master\'s: 1 for the current class', labelNames: ['slave', 'drift'], registers,
      collect() { this.reset(); for (const s of slaves()) for (const dr of DRIFT_CLASSES) this.set({ slave: s.name, drift: dr }, s.drift === dr ? 1 : 0); } });
    new client.Gauge({ name: 'd8_slave_channel_up', help: 'Whether the daemon\'s channel to the slave\'s agent is open (absent before the daemon recorded one)', labelNames: ['slave'], registers,
      collect() { this.reset(); for (const s of slaves()) if (s.channel) this.set({ slave: s.name }, s.channel.connected ? 1 : 0); } });
    new client.Gauge({ name: 'd8_slave_channel_reconnects', help: 'Channels to the slave\'s agent opened after the first, since the daemon started', labelNames: ['slave'], registers,
      collect() { this.reset(); for (const s of slaves()) if (s.channel) this.set({ slave: s.name }, s.channel.reconnects); } });
    new client.Gauge({ name: 'd8_slave_channel_heartbeat_age_seconds', help: 'Seconds since the last line on the slave\'s channel, as of the daemon\'s last record', labelNames: ['slave'], registers,
      collect() {
        this.reset();
        for (const { name, channel: c } of slaves()) {
          if (c?.last_heartbeat_at) this.set({ slave: name }, Math.max(0, (Date.parse(c.updated_at) - Date.parse(c.last_heartbeat_at)) / 1000));
        }
      } });
    new client.Gauge({ name: 'd8_slave_commits_behind', help: 'Commits the master has that the slave does not (absent when git cannot tell)', labelNames: ['slave'], registers,
      async collect() {
        this.reset();
        const st = d.control.status();
        for (const s of st.slaves) {
          const dist = await d.distance.between(st.master.commit, s.commit);
          if (dist) this.set({ slave: s.name }, dist.behind);
        }
      } });
    new client.Gauge({ name: 'd8_slave_consecutive_failures', help: 'Failed checks in a row', labelNames: ['slave'], registers,
      collect() { this.reset(); for (const s of slaves()) this.set({ slave: s.name }, s.failures); } });
    new client.Gauge({ name: 'd8_slave_last_seen_timestamp_seconds', help: 'When the slave last answered a check (absent when never)', labelNames: ['slave'], registers,
      collect() { this.reset(); for (const s of slaves()) if (s.last_seen) this.set({ slave: s.name }, Date.parse(s.last_seen) / 1000); } });

    this.checkLatency = new client.Histogram({ name: 'd8_check_latency_seconds', help: 'Latency of successful health checks', labelNames: ['slave'], registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
    this.checks = new client.Counter({ name: 'd8_checks_total', help: 'Health checks by result since the master started', labelNames: ['slave', 'result'], registers });

    new client.Counter({ name: 'd8_deploys_total', help: 'Deploys recorded in the store, by engine and result', labelNames: ['engine', 'result'], registers,
      collect() {
        this.reset();
        const rows = stmt(d.db, 'SELECT engine, status, COUNT(*) AS n FROM deploy_history WHERE stack = ? GROUP BY engine, status').all(d.stack) as Array<{ engine: string; status: string; n: number }>;
        for (const r of rows) this.inc({ engine: r.engine, result: r.status }, r.n);
      } });
    new client.Histogram({ name: 'd8_deploy_duration_seconds', help: 'Duration of finished deploys recorded in the store', labelNames: ['engine', 'result'], registers,
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800],
      collect() {
        this.reset();
        const rows = stmt(d.db, "SELECT engine, status, (julianday(finished_at) - julianday(started_at)) * 86400.0 AS s FROM deploy_history WHERE stack = ? AND finished_at IS NOT NULL")
          .all(d.stack) as Array<{ engine: string; status: string; s: number | null }>;
        for (const r of rows) if (r.s !== null && r.s >= 0) this.observe({ engine: r.engine, result: r.status }, r.s);
      } });

    new client.Gauge({ name: 'd8_outbox_depth', help: 'Alerts waiting in the outbox for delivery', registers,
      collect() { this.set(d.control.status().pending_alerts); } });
    new client.Gauge({ name: 'd8_outbox_delivery_failures', help: 'Failed delivery attempts of the alerts still in the outbox', registers,
      collect() { this.set((stmt(d.db, 'SELECT COALESCE(SUM(attempts), 0) AS n FROM alerts_outbox').get() as { n: number }).n); } });
    new client.Gauge({ name: 'd8_outbox_oldest_age_seconds', help: 'Age of the oldest undelivered alert (0 when the outbox is empty)', registers,
      collect() {
        const r = stmt(d.db, 'SELECT MIN(created_at) AS t FROM alerts_outbox').get() as { t: string | null };
        this.set(r.t ? Math.max(0, (Date.now() - Date.parse(r.t)) / 1000) : 0);
      } });
    new client.Gauge({ name: 'd8_requests', help: 'Human requests by status', labelNames: ['status'], registers,
      collect() {
        this.reset();
        const rows = stmt(d.db, 'SELECT status, COUNT(*) AS n FROM human_requests GROUP BY status').all() as Array<{ status: string; n: number }>;
        for (const st of REQUEST_STATUSES) this.set({ status: st }, rows.find((r) => r.status === st)?.n ?? 0);
      } });
    this.sweepDuration = new client.Histogram({ name: 'd8_sweep_duration_seconds', help: 'How long each sweep (checks of every slave) took', registers,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
  }

  observeChecks(checks: NewCheck[]): void {
    for (const c of checks) {
      this.checks.inc({ slave: c.slave, result: c.ok ? 'ok' : 'failed' });
      if (c.ok && c.latency_ms !== null) this.checkLatency.observe({ slave: c.slave }, c.latency_ms / 1000);
    }
  }

  observeSweep(durationMs: number): void {
    this.sweepDuration.observe(durationMs / 1000);
  }

  async exposition(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
