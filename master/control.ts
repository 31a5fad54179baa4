/**
 * FleetControl: the one facade the CLI and the Telegram bot call. Reads come from the store (so
 * they work while a daemon runs elsewhere); actions go to the supervisor when we are inside the
 * daemon, to the running daemon through the store's control_commands when there is one (it owns
 * the deploy locks), or run in this process when no daemon runs.
 */
import type { FleetConfig, SlaveConfig } from '../core/stack-config';
import { findSlave } from '../core/stack-config';
import { withAgentToken } from './agent-tokens';
import type { ExecuteRequest, ExecuteResponse } from '../core/protocol';
import { gitHead } from '../core/version-info';
import type { Store } from './store';
import type { RolloutStore } from './store/rollouts';
import type { ControlKind, ControlResult } from './store/commands';
import type { SlaveRecord } from './store/slaves';
import type { ChannelStatus } from '../core/fleet-state';
import { MasterVersion } from './master-version';
import { AgentClient } from './agent-client';
import type { Supervisor } from './daemon/supervisor';
import type { RequestService } from './store/requests';
import type { SpendLedger } from './store/spend';
import type { SlaveState } from './checker/state-machine';

export class SlaveNotHealthyError extends Error {
  constructor(readonly slave: string, readonly state: SlaveState) {
    super(`${slave} is ${state}, not healthy: tasks only run on healthy slaves (see \`d8 status\`, or \`d8 retry ${slave}\`)`);
    this.name = 'SlaveNotHealthyError';
  }
}

export class ControlTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ControlTimeoutError';
  }
}

/** One slave as `d8 status`, Telegram and the dashboard show it: its stored record's public part, plus where it is. */
export type SlaveStatus = Pick<SlaveRecord,
  'name' | 'state' | 'drift' | 'commit' | 'branch' | 'strategy' | 'supervisor' | 'reboot_safe' | 'last_seen' | 'last_check' | 'last_error' | 'failures' | 'breaker'> & {
  host: string;
  endpoint: string;
  auto_update: string;
  /** The daemon's channel to the agent (null without a running daemon, or before it recorded one). */
  channel: ChannelStatus | null;
};

export interface FleetStatus {
  stack: string;
  master: { commit: string | null; branch: string | null; daemon: { running: boolean; pid: number | null; heartbeat_at: string | null; engine: string | null } };
  slaves: SlaveStatus[];
  pending_alerts: number;
  open_requests: number;
}

export interface FleetControlOptions {
  config: FleetConfig;
  store: Store;
  repoDir: string;
  /** Set inside the daemon. */
  supervisor?: Supervisor;
  /** Without a daemon: runs a retry/update in this process. */
  runLocally?: (kind: ControlKind, slave: string) => Promise<ControlResult>;
  /** How long the CLI waits for the daemon to answer a command. */
  commandTimeoutMs?: number;
}

export class FleetControl {
  constructor(private readonly o: FleetControlOptions) {}

  get requests(): RequestService {
    return this.o.store.requests;
  }

  get spend(): SpendLedger {
    return this.o.store.spend;
  }

  get rollouts(): RolloutStore {
    return this.o.store.rollouts;
  }

  /** A daemon counts as running when its pid lives and it beat within three intervals (at least 90 s). */
  daemonRunning(): boolean {
    if (this.o.supervisor) return true;
    return this.o.store.master.isRunning(this.o.config.stack, Math.max(90_000, this.o.config.checkIntervalSeconds * 3000));
  }

  status(): FleetStatus {
    const { config, store } = this.o;
    const info = store.master.get(config.stack);
    const running = this.daemonRunning();
    let commit = running && info ? info.commit : null;
    let branch = running && info ? info.branch : null;
    if (!commit) {
      try { commit = gitHead(this.o.repoDir); } catch { commit = MasterVersion.read(this.o.repoDir)?.commit ?? info?.commit ?? null; }
      branch = MasterVersion.read(this.o.repoDir)?.branch ?? info?.branch ?? null;
    }
    const rows = new Map(store.slaves.list(config.stack).map((r) => [r.name, r]));
    const channels = running ? store.channels.list(config.stack) : new Map<string, ChannelStatus>();
    const slaves = config.slaves.map((s) => toStatus(s, rows.get(s.name), channels.get(s.name) ?? null));
    return {
      stack: config.stack,
      master: { commit, branch, daemon: { running, pid: running ? info?.pid ?? null : null, heartbeat_at: info?.heartbeat_at ?? null, engine: info?.engine ?? null } },
      slaves,
      pending_alerts: store.outbox.pendingCount(),
      open_requests: store.requests.count(),
    };
  }

  retry(slave: string): Promise<ControlResult> {
    return this.command('retry', slave);
  }

  update(slave: string): Promise<ControlResult> {
    return this.command('update', slave);
  }

  private async command(kind: ControlKind, name: string): Promise<ControlResult> {
    findSlave(this.o.config, name);
    if (this.o.supervisor) return kind === 'retry' ? this.o.supervisor.retry(name) : this.o.supervisor.forceUpdate(name);
    if (this.daemonRunning()) {
      const id = this.o.store.commands.enqueue(this.o.config.stack, kind, name);
      const deadline = Date.now() + (this.o.commandTimeoutMs ?? 30 * 60_000);
      for (;;) {
        const c = this.o.store.commands.get(id);
        if (c?.status === 'done' && c.result) return c.result;
        if (Date.now() > deadline) throw new ControlTimeoutError(`the daemon did not finish "${kind} ${name}" in time (command ${id}); see \`d8 status\` and the daemon's log`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    if (!this.o.runLocally) throw new Error(`no master daemon runs for stack ${this.o.config.stack} and this caller cannot ${kind} locally`);
    return this.o.runLocally(kind, name);
  }

  /** Runs a task on a slave; refuses one that is not healthy. */
  async execute(name: string, task: ExecuteRequest): Promise<ExecuteResponse> {
    const slave = findSlave(this.o.config, name);
    const rec = this.o.store.slaves.get(this.o.config.stack, name);
    const state = rec?.state ?? 'unknown';
    if (state !== 'healthy') throw new SlaveNotHealthyError(name, state);
    const client = this.o.supervisor?.client ?? new AgentClient({ pins: this.o.store.pins.lookup(this.o.config.stack) });
    try {
      return await withAgentToken(this.o.config, name, (token) => client.execute(slave, token, task));
    } finally {
      if (!this.o.supervisor) client.close();
    }
  }
}

function toStatus(s: SlaveConfig, r: SlaveRecord | undefined, channel: ChannelStatus | null): SlaveStatus {
  return {
    name: s.name, host: s.host, endpoint: `${s.agentHost}:${s.agentPort}`,
    state: r?.state ?? 'unknown', drift: r?.drift ?? 'unknown', commit: r?.commit ?? null, branch: r?.branch ?? null,
    strategy: r?.strategy ?? null, supervisor: r?.supervisor ?? null, reboot_safe: r?.reboot_safe ?? null, last_seen: r?.last_seen ?? null, last_check: r?.last_check ?? null, last_error: r?.last_error ?? null,
    failures: r?.failures ?? 0, breaker: r?.breaker ?? 'closed', auto_update: s.autoUpdate, channel,
  };
}
