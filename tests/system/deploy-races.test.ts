/**
 * One deploy per slave (issue 12): real `d8 up` processes against a real sshd test host, with the real
 * daemon (`d8 master`) supervising the same slave from the same D8_HOME. Three concurrent forced
 * deploys leave exactly one agent whose pid file names it, and a later deploy still works; `--no-wait`
 * fails at once naming the holder; a SIGKILLed holder does not block the next deploy.
 * The stack file lives in the checkout for the run (the daemon reads stacks from its --repo, and
 * deploys build the bundle from it), under a random name, removed afterwards.
 * Runs bin/d8.js (dist/): build first.
 */
import { spawn, type ChildProcess } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { gitHead } from '../../core/version-info';
import { probeInstalled } from '../support/agent-process';
import { openStore } from '../../master/store';
import { runD8, type Run } from '../support/run-process';
import { describeTier } from '../support/tier';
import { waitFor } from '../support/agent-process';
import { agentPids, freePort, randomToken, REPO, oneSlaveStack, systemTier, tempDir, uninstallAsUser, upTestHosts, type TestHost } from './support/hosts';

jest.setTimeout(10 * 60 * 1000);

describeTier(systemTier, 'one deploy per slave across d8 up and the daemon', () => {
  let host: TestHost;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let port: number;
  let daemon: ChildProcess | null = null;
  const stack = `rc-races-${crypto.randomBytes(4).toString('hex')}`;
  const stackFile = path.join(REPO, `Pulumi.${stack}.yaml`);
  const token = randomToken();
  const up = (args: string[] = []): Promise<Run> => runD8(REPO, ['up', '--stack', stack, '--engine', 'direct', '--force', ...args], env);

  function pidFile(): number {
    return Number(fs.readFileSync(path.join(host.home, '.d8-agent', `agent-${port}.pid`), 'utf8').trim());
  }

  async function expectOneAgent(): Promise<number> {
    const pids = agentPids(host.user, port);
    expect(pids).toHaveLength(1);
    expect(pidFile()).toBe(pids[0]);
    const h = await probeInstalled(host.host, port);
    expect(h.ok && h.health.commit).toBe(gitHead(REPO));
    return pids[0];
  }

  /** The deploy lock row of the slave, as another process sees it. */
  function lockHolder(): { pid: number; holder: string } | null {
    const store = openStore(path.join(dir, 'home', 'master.db'));
    try {
      return store.deployLocks.get(stack, 'box');
    } finally {
      store.close();
    }
  }

  beforeAll(async () => {
    if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: build first (npx tsc -p tsconfig.json)');
    const th = upTestHosts();
    host = th.hosts.venv;
    dir = tempDir('d8-systest-races-');
    port = await freePort();
    fs.writeFileSync(stackFile, oneSlaveStack(th.key, host, port));
    env = { ...process.env, D8_HOME: path.join(dir, 'home'), D8_AGENT_TOKEN: token, D8_SSH_KEY_PATH: '', D8_SSH_PRIVATE_KEY: '' };
  });

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon!.once('exit', r));
    }
    fs.rmSync(stackFile, { force: true });
    if (host) uninstallAsUser(REPO, host.user, port);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('three concurrent d8 up --force with the daemon running: one agent, its pid in the pid file, and a later deploy works', async () => {
    const log = fs.openSync(path.join(dir, 'daemon.log'), 'a');
    daemon = spawn(process.execPath, [path.join(REPO, 'bin', 'd8.js'), 'master', '--stack', stack, '--repo', REPO, '--engine', 'direct', '--interval', '1'], {
      cwd: REPO, stdio: ['ignore', log, log],
      // Dead after one failed check and recovered at once: the daemon deploys the slave while d8 up does.
      env: { ...env, D8_MASTER_TUNING: JSON.stringify({ deadAfter: 1, checkAttempts: 1, recoveryBackoffMs: 200, settleMs: 20000 }) },
    });
    fs.closeSync(log);
    const daemonLog = (): string => fs.readFileSync(path.join(dir, 'daemon.log'), 'utf8');
    // Wait until the daemon is deploying the missing agent, then start three deploys at once.
    await waitFor(() => /deploying box/.test(daemonLog()), 60_000, 'the daemon to start deploying box');
    const runs = await Promise.all([0, 1, 2].map(() => up()));
    for (const r of runs) {
      expect(r.stderr).not.toContain('already in use');
      expect(r.code).toBe(0);
    }
    await expectOneAgent();
    const later = await up();
    expect(later.stderr).not.toContain('already in use');
    expect(later.code).toBe(0);
    await expectOneAgent();
    // The ones that waited said for whom: the daemon or another d8 up, with its pid and since when.
    const waited = runs.filter((r) => /\[box\] waiting for the deploy by (d8 up|d8 master \(daemon\)) \(pid \d+, since \d{4}-\d\d-\d\dT[\d:.]+Z, reason \w+\)/.test(r.stderr));
    expect(waited.length).toBeGreaterThanOrEqual(2);
    // The daemon's own deploys went through the same lock (it never ran one beside a d8 up).
    expect(daemonLog()).not.toMatch(/already in use/);
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon!.once('exit', r));
  });

  it('--no-wait fails at once with kind locked (exit 18), naming the holder; --help documents it', async () => {
    const help = await runD8(REPO, ['up', '--help'], env);
    expect(help.stdout).toContain('--no-wait');
    expect(help.stdout).toMatch(/18\s+locked/);
    const first = up();
    const holder = await waitFor(() => lockHolder(), 60_000, 'the first d8 up to hold the lock');
    expect(holder.holder).toBe('d8 up');
    const t0 = Date.now();
    const second = await up(['--no-wait', '--json']);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(second.code).toBe(18);
    expect(second.stderr).toContain(`another deploy of box is running: d8 up (pid ${holder.pid}, since `);
    expect(JSON.parse(second.stdout)).toEqual([expect.objectContaining({ slave: 'box', status: 'failed', errorKind: 'locked' })]);
    expect((await first).code).toBe(0);
    await expectOneAgent();
    expect(lockHolder()).toBeNull();
  });

  it('a SIGKILLed holder does not block the next deploy', async () => {
    const victim = spawn(process.execPath, [path.join(REPO, 'bin', 'd8.js'), 'up', '--stack', stack, '--engine', 'direct', '--force'], { cwd: REPO, env, stdio: 'ignore' });
    await waitFor(() => lockHolder()?.pid === victim.pid, 60_000, 'the victim to hold the lock');
    victim.kill('SIGKILL');
    await new Promise((r) => victim.once('exit', r));
    expect(lockHolder()?.pid).toBe(victim.pid); // left behind: nothing released it
    const next = await up(['--no-wait']);
    expect(next.code).toBe(0);
    await expectOneAgent();
    expect(lockHolder()).toBeNull();
  });
});
