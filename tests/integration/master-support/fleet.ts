/**
 * Fixtures for the master's integration tests: a temp git repository with real ancestry (behind,
 * ahead, diverged commits), a stack file naming loopback agents, real agents, the real daemon as a
 * child process, CLI runs, and the store read back for assertions.
 */
import { execFileSync, spawn, type ChildProcess } from 'child_process';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import YAML from 'yaml';
import { startAgent, strongToken, cleanEnv, alive, sleep, waitFor, httpRequest, type AgentHandle } from '../../support/agent-process';
import { SlaveTokenRecordSchema, type SlaveTokenRecord } from '../../../core/slave-tokens';
import { openStore, type Store } from '../../../master/store';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const D8_BIN = path.join(REPO_ROOT, 'bin', 'd8.js');
export const SPAWN_DEPLOYER = path.join(__dirname, 'spawn-deployer.js');
export { sleep, waitFor, alive };

export interface Commits { base: string; main: string; ahead: string; side: string }

const git = (dir: string, ...args: string[]): string =>
  execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } }).trim();

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** A slave on loopback; `host` other than `local` makes it a remote slave (SSH deploys) whose agent is still on 127.0.0.1. */
export interface SlaveSpec { name: string; port: number; autoUpdate?: 'auto' | 'approve' | 'off'; host?: string; user?: string; labels?: string[] }

export class Fleet {
  readonly root: string;
  readonly repo: string;
  readonly home: string;
  readonly agentsDir: string;
  readonly token = strongToken();
  commits!: Commits;
  private readonly agents: AgentHandle[] = [];
  private readonly daemons: ChildProcess[] = [];
  private store: Store | null = null;

  constructor(readonly stack = 'test') {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-master-test-'));
    this.repo = path.join(this.root, 'repo');
    this.home = path.join(this.root, 'home');
    this.agentsDir = path.join(this.root, 'agents');
    fs.mkdirSync(this.repo);
    fs.mkdirSync(this.agentsDir);
  }

  /** base -> main (HEAD); ahead: main -> ahead (branch); side: base -> side (diverged). */
  initRepo(slaves: SlaveSpec[], extra: Record<string, unknown> = {}): Commits {
    const r = this.repo;
    git(r, 'init', '-q', '-b', 'main');
    fs.writeFileSync(path.join(r, 'package.json'), JSON.stringify({ name: 'fleet-under-test', version: '1.2.3' }) + '\n');
    fs.writeFileSync(path.join(r, '.gitignore'), 'version_info.json\n');
    this.writeStack(slaves, extra);
    git(r, 'add', '.');
    git(r, 'commit', '-q', '-m', 'base');
    const base = git(r, 'rev-parse', 'HEAD');
    fs.writeFileSync(path.join(r, 'a.txt'), 'main\n');
    git(r, 'add', '.');
    git(r, 'commit', '-q', '-m', 'main');
    const main = git(r, 'rev-parse', 'HEAD');
    git(r, 'checkout', '-q', '-b', 'ahead');
    fs.writeFileSync(path.join(r, 'b.txt'), 'ahead\n');
    git(r, 'add', '.');
    git(r, 'commit', '-q', '-m', 'ahead');
    const ahead = git(r, 'rev-parse', 'HEAD');
    git(r, 'checkout', '-q', '-b', 'side', base);
    fs.writeFileSync(path.join(r, 'c.txt'), 'side\n');
    git(r, 'add', '.');
    git(r, 'commit', '-q', '-m', 'side');
    const side = git(r, 'rev-parse', 'HEAD');
    git(r, 'checkout', '-q', 'main');
    this.commits = { base, main, ahead, side };
    return this.commits;
  }

  /**
   * The repository as a copy of this checkout's core/ and agent/ (the real bundle builds from it),
   * committed once; returns its HEAD. For daemons with the real direct deployer on `host: local`.
   */
  initCheckoutRepo(slaves: SlaveSpec[], extra: Record<string, unknown> = {}): string {
    for (const d of ['core', 'agent']) fs.cpSync(path.join(REPO_ROOT, d), path.join(this.repo, d), { recursive: true });
    fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(this.repo, 'package.json'));
    fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(this.repo, 'node_modules'));
    fs.writeFileSync(path.join(this.repo, '.gitignore'), 'version_info.json\nnode_modules\nbuild/\n');
    this.writeStack(slaves, extra);
    git(this.repo, 'init', '-q', '-b', 'main');
    git(this.repo, 'add', '.');
    git(this.repo, 'commit', '-q', '-m', 'fleet');
    return git(this.repo, 'rev-parse', 'HEAD');
  }

  /** A new commit on main (the master's HEAD moves). */
  commitOnMain(file = 'd.txt'): string {
    fs.writeFileSync(path.join(this.repo, file), `${Date.now()}\n`);
    git(this.repo, 'add', file);
    git(this.repo, 'commit', '-q', '-m', `change ${file}`);
    return git(this.repo, 'rev-parse', 'HEAD');
  }

  writeStack(slaves: SlaveSpec[], extra: Record<string, unknown> = {}): void {
    const config: Record<string, unknown> = {
      'd8:slaves': slaves.map((s) => ({ name: s.name, host: s.host ?? 'local', ...(s.user ? { user: s.user } : {}), agentPort: s.port, strategies: ['native'], ...(s.autoUpdate ? { autoUpdate: s.autoUpdate } : {}), ...(s.labels ? { labels: s.labels } : {}) })),
      'd8:autoUpdate': 'auto',
      'd8:checkIntervalSeconds': 1,
      // Off unless a test asks for it: daemons of other tests must not race for :7500.
      'd8:dashboard': { enabled: false },
      // Off unless a test asks for it: a summary would add a message to other tests' Telegram chats.
      'd8:dailySummary': { enabled: false },
      ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [`d8:${k}`, v])),
    };
    fs.writeFileSync(path.join(this.repo, `Pulumi.${this.stack}.yaml`), YAML.stringify({ config }));
  }

  /** A real agent on `port` reporting `commit`; its pid is recorded for the spawn deployer to replace. */
  async agent(name: string, port: number, commit: string, env: NodeJS.ProcessEnv = {}): Promise<AgentHandle> {
    const vf = path.join(this.agentsDir, `${name}-initial-version.json`);
    fs.writeFileSync(vf, JSON.stringify({ branch: 'main', commit, version: '1.2.3', deployed_at: new Date().toISOString(), dirty: false }));
    const a = await startAgent({ token: this.token, port, versionFile: vf, env: { D8_INSTALL_STRATEGY: 'native', D8_TEST_MARK: this.agentsDir, ...env } });
    fs.writeFileSync(path.join(this.agentsDir, `${name}.pid`), String(a.pid));
    this.agents.push(a);
    return a;
  }

  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return cleanEnv({ D8_HOME: this.home, D8_AGENT_TOKEN: this.token, D8_TEST_AGENTS_DIR: this.agentsDir, D8_LOG_LEVEL: 'info', ...extra });
  }

  /** Starts `d8 master` as a child process; its stderr (pino JSON) is kept in daemon.log. */
  daemon(opts: { tuning?: Record<string, unknown>; env?: NodeJS.ProcessEnv; args?: string[]; logName?: string; realDeployer?: boolean } = {}): { child: ChildProcess; log: () => string } {
    const logFile = path.join(this.root, opts.logName ?? `daemon-${this.daemons.length}.log`);
    const out = fs.openSync(logFile, 'a');
    const child = spawn(process.execPath, [D8_BIN, 'master', '--stack', this.stack, '--repo', this.repo, '--interval', '1', '--engine', 'direct',
      ...(opts.realDeployer ? [] : ['--deployer-module', SPAWN_DEPLOYER]), ...(opts.args ?? [])], {
      env: this.env({ D8_MASTER_TUNING: JSON.stringify({ deadAfter: 2, settleMs: 20000, recoveryBackoffMs: 500, recoveryBackoffMaxMs: 2000, updateBackoffMs: 2000, controlPollMs: 200, attemptTimeoutMs: 1000, checkDeadlineMs: 3000, stopGraceMs: 20000, ...(opts.tuning ?? {}) }), ...(opts.env ?? {}) }),
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    this.daemons.push(child);
    return { child, log: () => fs.readFileSync(logFile, 'utf8') };
  }

  /** Runs a d8 CLI command to completion. */
  cli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [D8_BIN, ...args], { env: this.env(env), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`d8 ${args.join(' ')} timed out; stderr: ${stderr}`)); }, timeoutMs);
      child.on('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
    });
  }

  /** The daemon's store, opened read/write like the CLI does (WAL: safe while it runs). */
  db(): Store {
    this.store ??= openStore(path.join(this.home, 'master.db'));
    return this.store;
  }

  slave(name: string) {
    return this.db().slaves.get(this.stack, name);
  }

  /** The slave's own token record (D8_HOME/tokens/<stack>/<slave>.json). */
  tokenRecord(slave: string): SlaveTokenRecord {
    return SlaveTokenRecordSchema.parse(JSON.parse(fs.readFileSync(path.join(this.home, 'tokens', this.stack, `${slave}.json`), 'utf8')));
  }

  /** Alerts delivered (log notifier) plus those still queued, oldest first. */
  alerts(slave?: string): Array<{ kind: string; slave: string | null; data: Record<string, unknown> }> {
    // One read transaction: the daemon moves alerts from the outbox to alerts_sent, and two separate
    // reads could miss an alert that moved between them (seen once in CI: a read returned neither).
    const store = this.db();
    const read = store.db.transaction(() => {
      const sent = store.outbox.sent(10_000);
      const queued = (store.db.prepare('SELECT payload FROM alerts_outbox ORDER BY id').all() as Array<{ payload: string }>).map((r) => JSON.parse(r.payload));
      return [...sent, ...queued];
    });
    return read().filter((a) => slave === undefined || a.slave === slave);
  }

  async stopDaemon(child: ChildProcess, timeoutMs = 60_000): Promise<number | null> {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await done;
    clearTimeout(t);
    return code;
  }

  /** Stops daemons, every agent (ours and the ones the deployer or a restart started), removes the temp dir. */
  async cleanup(): Promise<void> {
    for (const d of this.daemons) await this.stopDaemon(d, 20_000).catch(() => undefined);
    this.store?.close();
    for (const a of this.agents) await a.stop().catch(() => undefined);
    const pids = markedPids(this.agentsDir);
    for (const p of pids) try { process.kill(p, 'SIGTERM'); } catch { /* gone */ }
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && pids.some(alive)) await sleep(50);
    for (const p of pids) if (alive(p)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** Fleet.initCheckoutRepo, then `git` for that repo (tests that commit releases of their own). */
export function realAgentRepo(fleet: Fleet, slaves: SlaveSpec[], extra: Record<string, unknown>): (...args: string[]) => string {
  fleet.initCheckoutRepo(slaves, extra);
  return (...a: string[]) => git(fleet.repo, ...a);
}

/** Pids of processes whose environment carries D8_TEST_MARK=<mark> (agents we started, directly or not). */
export function markedPids(mark: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const env = fs.readFileSync(`/proc/${d}/environ`, 'utf8');
      if (env.split('\0').includes(`D8_TEST_MARK=${mark}`)) out.push(Number(d));
    } catch { /* gone or not ours */ }
  }
  return out;
}

/** Pids whose command line or environment mentions `dir` (the agents install.sh started under that HOME). */
export function pidsUnder(dir: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      const env = fs.readFileSync(`/proc/${d}/environ`, 'utf8');
      if ((cmd.includes(dir) || env.includes(`HOME=${dir}`)) && cmd.includes('agent')) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

/** Stops the agents install.sh started under `dir` (TERM, then KILL after 5 s). */
export async function stopAgentsUnder(dir: string): Promise<void> {
  const pids = pidsUnder(dir);
  for (const p of pids) try { process.kill(p, 'SIGTERM'); } catch { /* gone */ }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && pids.some(alive)) await sleep(50);
  for (const p of pids) if (alive(p)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
}

/** POST /api/execute (`echo ok`) on the agent at 127.0.0.1:`port` with `token`: its HTTP status. */
export async function execStatus(port: number, token: string): Promise<number> {
  return (await httpRequest({ port, method: 'POST', path: '/api/execute', headers: { Authorization: `Bearer ${token}` }, body: { command: 'echo ok', kind: 'shell' } })).status;
}
