/**
 * install.sh under races and faults, run with dash on this machine as a host would run it (issue 12):
 * concurrent installers of one port (with flock, and with the mkdir lock where flock is missing),
 * a lock left by a SIGKILLed installer, a hung (SIGSTOPped) agent, an agent the pid file does not
 * name, and the agent's environment (none of the caller's). The agents are real (native strategy).
 */
import { spawn, spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { buildBundle, type BundleInfo } from '../../agent/bundle/build';
import { parseInstallOutput } from '../../core/install-result';
import { probeInstalled } from '../support/agent-process';
import { runProcess, type Run } from '../support/run-process';
import { alive, httpRequest, sleep, waitFor } from '../support/agent-process';
import { freePort, randomToken, tempDir } from '../../scripts/test-hosts/hosts';

jest.setTimeout(4 * 60 * 1000);

const DASH = fs.existsSync('/usr/bin/dash') ? '/usr/bin/dash' : 'sh';
const BASE_PATH = '/usr/local/bin:/usr/bin:/bin';

/** Pids of processes running this home's agent.js for `port` (what a stray agent looks like). */
function agentPids(home: string, port: number): number[] {
  const want = `${home}/.d8-agent/agent-${port}/agent.js`;
  const pids: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
    } catch { continue; }
    const argv = cmd.split('\0');
    if (argv.includes(want) && /node$/.test(argv[0])) pids.push(Number(d));
  }
  return pids;
}

function procState(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return null;
  }
}

/** A bin directory with every tool of BASE_PATH except `missing`. */
function binWithout(dir: string, missing: string): string {
  const bin = path.join(dir, `bin-without-${missing}`);
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(bin, { recursive: true });
  for (const d of BASE_PATH.split(':')) {
    if (!fs.existsSync(d)) continue;
    for (const t of fs.readdirSync(d)) {
      if (t === missing || fs.existsSync(path.join(bin, t))) continue;
      fs.symlinkSync(path.join(d, t), path.join(bin, t));
    }
  }
  return bin;
}

describe('install.sh under races and faults', () => {
  let dir: string;
  let bundle: BundleInfo;
  const token = randomToken();
  const homes: Array<{ home: string; port: number }> = [];

  beforeAll(async () => {
    dir = tempDir('d8-installer-races-');
    bundle = await buildBundle({ outRoot: path.join(dir, 'bundles') });
  });

  afterAll(() => {
    for (const { home, port } of homes) {
      spawnSync(DASH, [path.join(bundle.dir, 'uninstall.sh'), '--port', String(port)], { env: { PATH: BASE_PATH, HOME: home } });
      for (const pid of agentPids(home, port)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function newHome(name: string): Promise<{ home: string; port: number }> {
    const home = path.join(dir, name);
    fs.mkdirSync(home);
    const h = { home, port: await freePort() };
    homes.push(h);
    return h;
  }

  function install(home: string, port: number, opts: { path?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
    return runProcess(DASH, [path.join(bundle.dir, 'install.sh'), '--strategies', 'native', '--attempts', '1', '--delay', '0',
      '--port', String(port), '--token-stdin', '--health-timeout', '30'],
    { env: { ...opts.env, PATH: opts.path ?? BASE_PATH, HOME: home }, stdin: `${token}\n` });
  }

  function pidFile(home: string, port: number): number {
    return Number(fs.readFileSync(path.join(home, '.d8-agent', `agent-${port}.pid`), 'utf8').trim());
  }

  async function expectOneAgent(home: string, port: number): Promise<number> {
    const pids = agentPids(home, port);
    expect(pids).toHaveLength(1);
    expect(pidFile(home, port)).toBe(pids[0]);
    const h = await probeInstalled('127.0.0.1', port);
    expect(h.ok && h.health.commit).toBe(bundle.versionInfo.commit);
    return pids[0];
  }

  it.each([
    ['flock', undefined],
    ['an atomic mkdir lock (no flock on this host)', 'flock'],
  ])('three installers at once, with %s: all succeed one after another, one agent runs and the pid file names it', async (_how, missing) => {
    const { home, port } = await newHome(missing ? `concurrent-without-${missing}` : 'concurrent');
    const PATH = missing ? binWithout(dir, missing) : BASE_PATH;
    const runs = await Promise.all([0, 1, 2].map(() => install(home, port, { path: PATH })));
    for (const r of runs) {
      expect(r.stderr).not.toContain('already in use');
      if (!parseInstallOutput(r.stdout).ok) throw new Error(`an installer failed:\n${r.stderr}`);
      expect(parseInstallOutput(r.stdout)).toMatchObject({ ok: true, strategy: 'native' });
      expect(r.code).toBe(0);
    }
    // The later ones waited and said for whom.
    const waited = runs.filter((r) => /waiting for another D8 installer on this host: pid \d+ \(install\.sh --port \d+ since \d{4}-/.test(r.stderr));
    expect(waited.length).toBeGreaterThanOrEqual(1);
    const pid = await expectOneAgent(home, port);
    // Nothing of the lock outlives the installers but the (empty-of-meaning) flock file.
    expect(fs.existsSync(`${home}/.d8-agent.lock.d`)).toBe(false);
    // A later install replaces that agent cleanly.
    const again = await install(home, port, { path: PATH });
    if (again.code !== 0) throw new Error(`the later install failed:\n${again.stderr}`);
    expect(alive(pid)).toBe(false);
    await expectOneAgent(home, port);
  });

  it('an uninstall while an install runs waits for it, then removes the agent it started', async () => {
    const { home, port } = await newHome('uninstall-during-install');
    const installing = install(home, port);
    await waitFor(() => fs.existsSync(`${home}/.d8-agent.lock`) && /install\.sh --port/.test(fs.readFileSync(`${home}/.d8-agent.lock`, 'utf8')), 20_000, 'the install to hold the lock');
    const un = await runProcess(DASH, [path.join(bundle.dir, 'uninstall.sh'), '--port', String(port)], { env: { PATH: BASE_PATH, HOME: home } });
    expect(un.stderr).toMatch(new RegExp(`waiting for another D8 installer on this host: pid \\d+ \\(install\\.sh --port ${port} since `));
    expect(un.code).toBe(0);
    expect((await installing).code).toBe(0);
    expect(agentPids(home, port)).toEqual([]);
    expect(fs.existsSync(path.join(home, '.d8-agent'))).toBe(false);
    expect(fs.existsSync(`${home}/.d8-agent.lock`)).toBe(false);
  });

  it('a lock left by a SIGKILLed installer (mkdir lock) is taken over, saying so', async () => {
    const { home, port } = await newHome('stale-lock');
    const PATH = binWithout(dir, 'flock');
    const first = spawn(DASH, [path.join(bundle.dir, 'install.sh'), '--strategies', 'native', '--attempts', '1', '--delay', '0',
      '--port', String(port), '--token-stdin'], { env: { PATH, HOME: home }, stdio: ['pipe', 'ignore', 'ignore'] });
    first.stdin.end(`${token}\n`);
    const owner = `${home}/.d8-agent.lock.d/owner`;
    await waitFor(() => fs.existsSync(owner) && fs.readFileSync(owner, 'utf8').startsWith(`${first.pid} `), 20_000, 'the first installer to hold the lock');
    process.kill(first.pid!, 'SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect(fs.existsSync(owner)).toBe(true); // no trap runs on SIGKILL: the lock is stale now
    for (const pid of agentPids(home, port)) process.kill(pid, 'SIGKILL'); // whatever it had started
    const r = await install(home, port, { path: PATH });
    expect(r.stderr).toMatch(new RegExp(`removed a stale installer lock: ${first.pid} `));
    expect(r.code).toBe(0);
    await expectOneAgent(home, port);
  });

  it('a hung (SIGSTOPped) agent does not answer a restart, and the next install kills it and replaces it', async () => {
    const { home, port } = await newHome('hung');
    expect((await install(home, port)).code).toBe(0);
    const hung = await expectOneAgent(home, port);
    process.kill(hung, 'SIGSTOP');
    try {
      await waitFor(() => procState(hung) === 'T', 5000, 'the agent to stop');
      const restart = await probeInstalled('127.0.0.1', port, 1500);
      expect(restart.ok).toBe(false);
      const t0 = Date.now();
      const r = await install(home, port);
      expect(r.code).toBe(0);
      // Continued, then terminated: well inside the 5 s TERM grace that a stopped process would use up.
      expect(Date.now() - t0).toBeLessThan(20_000);
      await waitFor(() => !alive(hung) || procState(hung) === 'Z', 5000, 'the hung agent to be gone');
      const pid = await expectOneAgent(home, port);
      expect(pid).not.toBe(hung);
    } finally {
      try { process.kill(hung, 'SIGKILL'); } catch { /* gone */ }
    }
  });

  it('an agent the pid file does not name is found by its command line and stopped', async () => {
    const { home, port } = await newHome('stray');
    expect((await install(home, port)).code).toBe(0);
    const stray = await expectOneAgent(home, port);
    fs.writeFileSync(path.join(home, '.d8-agent', `agent-${port}.pid`), '999999\n');
    const r = await install(home, port);
    expect(r.stderr).not.toContain('already in use');
    expect(r.code).toBe(0);
    await waitFor(() => !alive(stray), 5000, 'the stray agent to be stopped');
    await expectOneAgent(home, port);
  });

  it('the agent starts with a minimal environment: none of the caller\'s variables reach it or its tasks', async () => {
    const { home, port } = await newHome('env');
    const secrets = { FOO_SECRET: 'rc-foo-secret-4f1d9e', TELEGRAM_TOKEN: '123456:rc-telegram-7ab2c9', D8_SSH_PRIVATE_KEY: 'rc-ssh-private-key-19e0d3' };
    expect((await install(home, port, { env: secrets })).code).toBe(0);
    const pid = await expectOneAgent(home, port);
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
    const names = environ.map((kv) => kv.slice(0, kv.indexOf('='))).sort();
    expect(names).toEqual(['D8_AGENT_PORT', 'D8_AGENT_TOKEN_FILE', 'D8_INSTALL_STRATEGY', 'D8_LOG_FILE', 'D8_PYTHON', 'D8_SUPERVISOR', 'D8_TLS_DIR', 'D8_VENV_DIR', 'D8_VERSION_FILE',
      'HOME', 'LANG', 'LOGNAME', 'PATH', 'USER']);
    const all = environ.join('\n') + fs.readFileSync(path.join(home, '.d8-agent', `agent-${port}`, 'agent.log'), 'utf8');
    // The agent writes its log itself, capped (agent/log-file.ts): the supervisor no longer appends to it.
    expect(environ).toContain(`D8_LOG_FILE=${path.join(home, '.d8-agent', `agent-${port}`, 'agent.log')}`);
    expect(all).toContain('"msg":"listening"');
    for (const v of Object.values(secrets)) expect(all).not.toContain(v);
    expect(all).not.toContain(token);
    // A task sees the same environment, without even the token file's name.
    const r = await httpRequest({
      port, method: 'POST', path: '/api/execute', scheme: 'https', headers: { authorization: `Bearer ${token}` },
      body: { command: 'env', kind: 'shell', method: 'native' },
    });
    const out = r.body as { output: string; exit_code: number };
    expect(out.exit_code).toBe(0);
    expect(out.output).toContain(`HOME=${home}`);
    for (const v of Object.values(secrets)) expect(out.output).not.toContain(v);
    expect(out.output).not.toMatch(/FOO_SECRET|TELEGRAM_TOKEN|D8_SSH_PRIVATE_KEY|D8_AGENT_TOKEN|D8_TLS_DIR|D8_LOG_FILE/);
    await sleep(0);
  });
});
