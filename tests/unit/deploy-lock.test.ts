/**
 * One deploy per slave across processes (issue 12), the parts that need no host: the store's deploy
 * lock (holder, stale holders by pid and start time), the coordinator waiting for it or failing with
 * kind `locked`, bundle placement racing itself through a real sh, and D8_HOME made 0700.
 */
import { spawn, spawnSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import pino from 'pino';
import { holderAlive, processStartTime } from '../../master/store/deploy-locks';
import { DeployCoordinator } from '../../master/deploy/coordinator';
import type { Deployer, DeployResult } from '../../master/deploy/deployer';
import { placeBundleCommand } from '../../agent/install/command';
import { ensurePrivateDir } from '../../core/paths';
import type { SlaveConfig } from '../../core/stack-config';
import { useTempStore } from '../support/temp-store';

const logger = pino({ level: 'silent' });
const slave = { name: 'box' } as SlaveConfig;

/** A deployer that holds each deploy until released, recording when deploys overlap. */
class GateDeployer implements Deployer {
  readonly engine = 'direct' as const;
  running = 0;
  maxRunning = 0;
  private gates: Array<() => void> = [];
  deploy(s: SlaveConfig): Promise<DeployResult> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    return new Promise((resolve) => {
      this.gates.push(() => {
        this.running--;
        resolve({ slave: s.name, engine: 'direct', status: 'deployed', ok: true, strategy: 'venv', attempts: [], commit: null, buildLogPath: null, error: null, errorKind: null, durationMs: 1 });
      });
    });
  }
  release(): void {
    this.gates.shift()?.();
  }
  get waiting(): number {
    return this.gates.length;
  }
}

const until = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('the deploy lock in the store', () => {
  const store = useTempStore();

  it('is taken once, names its holder, and is released only by its holder', () => {
    const locks = store().deployLocks;
    expect(locks.tryTake('prod', 'box', 'd8 up', 'manual')).toEqual({ taken: true, replacedStale: null });
    const again = locks.tryTake('prod', 'box', 'd8 master (daemon)', 'dead');
    expect(again.taken).toBe(false);
    expect(!again.taken && again.holder).toMatchObject({ stack: 'prod', slave: 'box', pid: process.pid, holder: 'd8 up', reason: 'manual' });
    expect(locks.tryTake('prod', 'other', 'd8 up', 'manual').taken).toBe(true); // per slave
    expect(locks.tryTake('dev', 'box', 'd8 up', 'manual').taken).toBe(true); // per stack
    locks.release('prod', 'box');
    expect(locks.get('prod', 'box')).toBeNull();
  });

  it('a holder that died (SIGKILL) is stale and replaced; so is a pid reused by another process', async () => {
    const child = spawn('sleep', ['30']);
    await new Promise((r) => child.once('spawn', r));
    const start = processStartTime(child.pid!);
    expect(start).toMatch(/^\d+$/);
    store().db.prepare('INSERT INTO deploy_locks (stack, slave, pid, proc_start, holder, reason, acquired_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run('prod', 'box', child.pid, start, 'd8 up', 'manual', new Date().toISOString());
    expect(store().deployLocks.tryTake('prod', 'box', 'd8 retry', 'manual').taken).toBe(false);
    // The same pid with another start time is another process: not the holder.
    expect(holderAlive({ pid: child.pid!, proc_start: String(Number(start) + 1) })).toBe(false);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const r = store().deployLocks.tryTake('prod', 'box', 'd8 retry', 'manual');
    expect(r).toMatchObject({ taken: true, replacedStale: { pid: child.pid, holder: 'd8 up' } });
    expect(store().deployLocks.get('prod', 'box')).toMatchObject({ pid: process.pid, holder: 'd8 retry' });
  });
});

describe('deploy history rows left running', () => {
  const store = useTempStore();
  const running = (pid: number, procStart: string | null): number => Number(store().db.prepare(
    "INSERT INTO deploy_history (stack, slave, engine, reason, status, pid, proc_start, started_at) VALUES ('prod', 'box', 'direct', 'manual', 'running', ?, ?, ?)",
  ).run(pid, procStart, new Date(0).toISOString()).lastInsertRowid);
  const status = (id: number): string => (store().db.prepare('SELECT status FROM deploy_history WHERE id = ?').get(id) as { status: string }).status;

  it('are reaped when their pid now belongs to another process (a reboot reused it), kept while their process runs', async () => {
    const child = spawn('sleep', ['30']);
    await new Promise((r) => child.once('spawn', r));
    try {
      const start = processStartTime(child.pid!)!;
      const alive = running(child.pid!, start);
      const reused = running(child.pid!, String(Number(start) + 1));
      const legacy = running(child.pid!, null); // a row from before start times were recorded
      const own = store().deploys.start('prod', 'box', 'direct', 'manual');
      expect(store().deploys.reapOrphans('prod')).toBe(1);
      expect([status(alive), status(reused), status(legacy), status(own)]).toEqual(['running', 'interrupted', 'running', 'running']);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('DeployCoordinator with the deploy lock', () => {
  const store = useTempStore();

  it('two coordinators (two processes sharing D8_HOME) deploy one slave one after the other; the second says who it waits for', async () => {
    const d = new GateDeployer();
    const waits: string[] = [];
    const a = new DeployCoordinator('prod', d, store().deploys, logger, { locks: store().deployLocks, holder: 'd8 up', pollMs: 10 });
    const b = new DeployCoordinator('prod', d, store().deploys, logger, {
      locks: store().deployLocks, holder: 'd8 master (daemon)', pollMs: 10, onWait: (s, h) => waits.push(`${s}:${h.holder}:${h.reason}`),
    });
    const first = a.deploy(slave, { reason: 'manual' });
    await until(() => d.waiting === 1);
    const second = b.deploy(slave, { reason: 'dead' });
    await until(() => waits.length === 1);
    expect(waits).toEqual(['box:d8 up:manual']);
    expect(d.waiting).toBe(1); // still only the first
    d.release();
    expect((await first).ok).toBe(true);
    await until(() => d.waiting === 1);
    expect(store().deployLocks.get('prod', 'box')).toMatchObject({ holder: 'd8 master (daemon)', reason: 'dead' });
    d.release();
    expect((await second).ok).toBe(true);
    expect(d.maxRunning).toBe(1);
    expect(store().deployLocks.get('prod', 'box')).toBeNull();
    expect(store().deploys.list('prod').map((r) => r.status)).toEqual(['ok', 'ok']);
  });

  it('noWait fails at once with kind locked, naming the holder, and records no deploy', async () => {
    const d = new GateDeployer();
    const a = new DeployCoordinator('prod', d, store().deploys, logger, { locks: store().deployLocks, holder: 'd8 up', pollMs: 10 });
    const b = new DeployCoordinator('prod', d, store().deploys, logger, { locks: store().deployLocks, holder: 'd8 retry', pollMs: 10 });
    const first = a.deploy(slave, { reason: 'manual' });
    await until(() => d.waiting === 1);
    const r = await b.deploy(slave, { reason: 'manual', noWait: true });
    expect(r).toMatchObject({ status: 'failed', ok: false, errorKind: 'locked' });
    expect(r.error).toMatch(new RegExp(`^another deploy of box is running: d8 up \\(pid ${process.pid}, since \\d{4}-.*, reason manual\\); not waiting`));
    expect(b.isDeploying('box')).toBe(false);
    d.release();
    await first;
    expect(store().deploys.list('prod')).toHaveLength(1);
  });

  it('gives up after waitTimeoutMs with kind locked', async () => {
    const d = new GateDeployer();
    const a = new DeployCoordinator('prod', d, store().deploys, logger, { locks: store().deployLocks, holder: 'd8 up', pollMs: 10 });
    const b = new DeployCoordinator('prod', d, store().deploys, logger, { locks: store().deployLocks, holder: 'd8 retry', pollMs: 10, waitTimeoutMs: 100 });
    const first = a.deploy(slave, { reason: 'manual' });
    await until(() => d.waiting === 1);
    const r = await b.deploy(slave, { reason: 'manual' });
    expect(r.errorKind).toBe('locked');
    expect(r.error).toMatch(/still running after 0 s of waiting: d8 up/);
    d.release();
    await first;
  });
});

describe('placeBundleCommand', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-place-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function upload(name: string, hash: string): string {
    const d = path.join(dir, 'bundles', name);
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'agent.js'), `// ${name}\n`);
    fs.writeFileSync(path.join(d, 'BUNDLE_HASH'), `${hash}\n`);
    return d;
  }

  it('eight placements of the same bundle at once: every one succeeds, one complete copy is left, nothing else', async () => {
    const hash = 'a'.repeat(64);
    const dest = path.join(dir, 'bundles', 'aaaaaaaaaaaaaaaa');
    const runs = await Promise.all([...Array(8).keys()].map((i) => new Promise<number | null>((resolve) => {
      const inc = upload(`.incoming-aaaaaaaaaaaaaaaa-${i}`, hash);
      spawn('sh', ['-c', placeBundleCommand(inc, dest, hash)], { stdio: 'ignore' }).once('exit', resolve);
    })));
    expect(runs).toEqual(Array(8).fill(0));
    expect(fs.readdirSync(path.join(dir, 'bundles'))).toEqual(['aaaaaaaaaaaaaaaa']);
    expect(fs.readdirSync(dest).sort()).toEqual(['BUNDLE_HASH', 'agent.js']);
  });

  it('replaces an incomplete directory left by an interrupted copy', () => {
    const hash = 'b'.repeat(64);
    const dest = path.join(dir, 'bundles', 'bbbbbbbbbbbbbbbb');
    fs.mkdirSync(dest, { recursive: true });
    fs.writeFileSync(path.join(dest, 'agent.js'), 'half');
    const inc = upload('.incoming-bbbbbbbbbbbbbbbb-x', hash);
    expect(spawnSync('sh', ['-c', placeBundleCommand(inc, dest, hash)]).status).toBe(0);
    expect(fs.readFileSync(path.join(dest, 'agent.js'), 'utf8')).toBe('// .incoming-bbbbbbbbbbbbbbbb-x\n');
    expect(fs.readdirSync(path.join(dir, 'bundles'))).toEqual(['bbbbbbbbbbbbbbbb']);
  });
});

describe('ensurePrivateDir (D8_HOME)', () => {
  it('makes an existing 0755 directory 0700 and says so; a 0700 one is left alone silently', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-home-'));
    try {
      fs.chmodSync(home, 0o755);
      const said: string[] = [];
      ensurePrivateDir(home, (l) => said.push(l));
      expect(fs.statSync(home).mode & 0o777).toBe(0o700);
      expect(said).toEqual([`d8: ${home} was mode 0755, readable by others: changed it to 0700 (it holds the master's state and secrets)`]);
      ensurePrivateDir(home, (l) => said.push(l));
      expect(said).toHaveLength(1);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('never touches a shared sticky directory such as /tmp', () => {
    const said: string[] = [];
    const before = fs.statSync(os.tmpdir()).mode;
    ensurePrivateDir(os.tmpdir(), (l) => said.push(l));
    expect(fs.statSync(os.tmpdir()).mode).toBe(before);
    expect(said).toEqual([]);
  });
});
