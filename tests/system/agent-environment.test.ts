/**
 * Agents keep none of the master's secrets (issue 12): distinctive secrets in the environment of the
 * master's processes (`d8 up`, `d8 master`, `d8 exec`) — the SSH private key, a Telegram token, some
 * FOO_SECRET — never reach an agent's environment (/proc/PID/environ), a task's (`d8 exec -- env`),
 * an agent log, a build log or the CLI's output: for a local slave (installed by a local shell of the
 * master) and for a remote one over SSH (a real sshd test host).
 * The stack file lives in the checkout for the run (d8 master and d8 exec read stacks from --repo),
 * under a random name, removed afterwards. Runs bin/d8.js (dist/): build first.
 */
import { spawnSync } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { runD8, type Run } from '../support/run-process';
import { describeTier } from '../support/tier';
import { freePort, randomToken, REPO, systemTier, tempDir, uninstallAsUser, upTestHosts, type TestHost } from './support/hosts';

jest.setTimeout(8 * 60 * 1000);

/** Every log under `dir` (recursively): the agent's and the installer's. */
function readLogs(dir: string): string {
  if (!fs.existsSync(dir)) return '';
  return fs.readdirSync(dir, { withFileTypes: true }).map((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'venv' || e.name === 'runtime' ? '' : readLogs(p);
    return /\.(log|json)$/.test(e.name) ? fs.readFileSync(p, 'utf8') : '';
  }).join('\n');
}

describeTier(systemTier, 'the master\'s secrets stay out of every agent', () => {
  let host: TestHost;
  let dir: string;
  let localHome: string;
  let env: NodeJS.ProcessEnv;
  let localPort: number;
  let remotePort: number;
  let keyLine: string;
  const stack = `rc-env-${crypto.randomBytes(4).toString('hex')}`;
  const stackFile = path.join(REPO, `Pulumi.${stack}.yaml`);
  const token = randomToken();
  const FOO = `rc-foo-secret-${crypto.randomBytes(6).toString('hex')}`;
  const TELEGRAM = `987654:rc-telegram-${crypto.randomBytes(6).toString('hex')}`;
  const d8 = (args: string[], e: NodeJS.ProcessEnv = env): Promise<Run> => runD8(REPO, args, e);
  const outputs: string[] = [];

  beforeAll(async () => {
    if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: build first (npx tsc -p tsconfig.json)');
    const th = upTestHosts();
    host = th.hosts.venv2;
    dir = tempDir('d8-systest-env-');
    localHome = path.join(dir, 'local-home');
    fs.mkdirSync(localHome);
    localPort = await freePort();
    remotePort = await freePort();
    const key = fs.readFileSync(th.key, 'utf8');
    // The longest line of the key's body: distinctive, and what a leak of the key would show.
    keyLine = key.split('\n').filter((l) => !l.startsWith('-----')).sort((a, b) => b.length - a.length)[0];
    expect(keyLine.length).toBeGreaterThan(40);
    fs.writeFileSync(stackFile, `config:
  d8:installDelaySeconds: 1
  d8:dashboard: { enabled: false }
  d8:slaves:
    - { name: here, host: local, agentPort: ${localPort}, strategies: [venv, native] }
    - { name: remote, host: ${host.host}, user: ${host.user}, sshPort: ${host.port}, agentPort: ${remotePort}, strategies: [venv] }
`);
    env = {
      ...process.env, HOME: localHome, D8_HOME: path.join(dir, 'd8home'), D8_AGENT_TOKEN: token,
      D8_SSH_KEY_PATH: '', D8_SSH_PRIVATE_KEY: key, TELEGRAM_TOKEN: TELEGRAM, FOO_SECRET: FOO,
    };
  });

  afterAll(() => {
    fs.rmSync(stackFile, { force: true });
    if (host) uninstallAsUser(REPO, host.user, remotePort);
    const bundles = localHome ? path.join(localHome, '.d8-agent', 'bundles') : '';
    for (const b of bundles && fs.existsSync(bundles) ? fs.readdirSync(bundles) : []) {
      spawnSync('sh', [path.join(bundles, b, 'uninstall.sh'), '--port', String(localPort)], { env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: localHome } });
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function expectClean(text: string, where: string): void {
    for (const [name, secret] of [['FOO_SECRET', FOO], ['TELEGRAM_TOKEN', TELEGRAM], ['the SSH private key', keyLine], ['the agent token', token]]) {
      if (text.includes(secret)) throw new Error(`${name} leaked into ${where}`);
    }
  }

  it('a local and an SSH slave deployed by a master holding secrets: agents, tasks and logs never see them', async () => {
    const deployed = await d8(['up', '--stack', stack, '--engine', 'direct', '--json']);
    outputs.push(deployed.stdout, deployed.stderr);
    expect(deployed.code).toBe(0);
    expect(JSON.parse(deployed.stdout)).toEqual([
      expect.objectContaining({ slave: 'here', ok: true }), expect.objectContaining({ slave: 'remote', ok: true, strategy: 'venv' })]);

    // One sweep marks both healthy, so d8 exec accepts them (no Telegram token: it would try to send).
    const sweep = await d8(['master', '--stack', stack, '--repo', REPO, '--engine', 'direct', '--once'], { ...env, TELEGRAM_TOKEN: '' });
    outputs.push(sweep.stdout, sweep.stderr);
    expect(sweep.stdout).toMatch(/here=healthy remote=healthy/);

    for (const [slave, home, port] of [['here', localHome, localPort], ['remote', host.home, remotePort]] as const) {
      // auto (docker here: a container of its own) and native (a child of the agent, with its environment).
      for (const method of ['auto', 'native']) {
        const task = await d8(['exec', slave, '--stack', stack, '--repo', REPO, '--method', method, '--', 'env']);
        outputs.push(task.stdout, task.stderr);
        expect(task.code).toBe(0);
        expect(task.stdout).toMatch(/^PATH=/m);
        expect(task.stdout).not.toMatch(/^(FOO_SECRET|TELEGRAM_TOKEN|D8_SSH_PRIVATE_KEY|D8_AGENT_TOKEN)=/m);
        expectClean(task.stdout, `d8 exec ${slave} --method ${method} -- env`);
      }

      const pid = Number(fs.readFileSync(path.join(home, '.d8-agent', `agent-${port}.pid`), 'utf8').trim());
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
      expect(environ).toContain(`D8_AGENT_PORT=${port}`);
      expect(environ.split('\0').map((kv) => kv.split('=')[0])).not.toEqual(expect.arrayContaining(['FOO_SECRET']));
      expectClean(environ, `/proc/${pid}/environ of ${slave}'s agent`);
      const logs = readLogs(path.join(home, '.d8-agent'));
      expect(logs).toContain('d8-agent'); // the agent's own log lines are there
      expectClean(logs, `${slave}'s logs under ~/.d8-agent (agent and install logs)`);
    }
    expectClean(readLogs(path.join(dir, 'd8home', 'build_logs')), 'the build logs');
    expectClean(outputs.join('\n'), 'the CLI output');
  });
});
