/**
 * The CLI end to end: `d8 up --engine direct` on a stack file, with progress on stderr, and
 * `d8 bootstrap-script` producing a script that installs an agent on a host when run there.
 * Runs bin/d8.js (dist/): build first (`npx tsc -p tsconfig.json`).
 */
import { spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { NodeSSH } from 'node-ssh';
import { parseInstallOutput } from '../../core/install-result';
import { gitHead } from '../../core/version-info';
import { probeInstalled } from '../support/agent-process';
import { runD8, type Run } from '../support/run-process';
import { httpRequest } from '../support/agent-process';
import { describeTier } from '../support/tier';
import { agentPids, freePort, randomToken, REPO, systemTier, tempDir, uninstallAsUser, upTestHosts, type TestHosts } from './support/hosts';

jest.setTimeout(8 * 60 * 1000);

const d8 = (args: string[], env: NodeJS.ProcessEnv): Promise<Run> => runD8(REPO, args, env);

describeTier(systemTier, 'd8 up --engine direct and d8 bootstrap-script', () => {
  let th: TestHosts;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let venvPort: number;
  let nativePort: number;
  const token = randomToken();

  beforeAll(async () => {
    if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) {
      throw new Error('dist/ is missing: build first (npx tsc -p tsconfig.json)');
    }
    th = upTestHosts();
    dir = tempDir('d8-systest-cli-');
    venvPort = await freePort();
    nativePort = await freePort();
    const h = th.hosts;
    fs.writeFileSync(path.join(dir, 'Pulumi.systest.yaml'), `config:
  d8:sshKeyPath: ${th.key}
  d8:installDelaySeconds: 1
  d8:baseImage: d8-base:bookworm
  d8:slaves:
    - { name: venv-box, host: ${h.venv.host}, user: ${h.venv.user}, sshPort: ${h.venv.port}, agentPort: ${venvPort} }
    - { name: native-box, host: ${h.native.host}, user: ${h.native.user}, sshPort: ${h.native.port}, agentPort: ${nativePort}, strategies: [venv, native] }
`);
    fs.writeFileSync(path.join(dir, 'Pulumi.bad.yaml'), `config:
  d8:sshKeyPath: ${th.key}
  d8:slaves:
    - { name: box, host: 127.0.0.12, user: d8-venv, agentPort: seventy }
`);
    env = { ...process.env, D8_HOME: path.join(dir, 'home'), D8_AGENT_TOKEN: token, D8_SSH_KEY_PATH: '', D8_SSH_PRIVATE_KEY: '' };
  });

  afterAll(() => {
    if (!th) return;
    uninstallAsUser(REPO, th.hosts.venv.user);
    uninstallAsUser(REPO, th.hosts.native.user);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('deploys a stack with progress per slave and attempt, a summary and build logs', async () => {
    const r = await d8(['up', '--stack', 'systest', '--dir', dir, '--engine', 'direct', '--force'], env);
    expect(r.stderr).toContain('d8 up: stack systest, 2 slave(s), engine direct');
    expect(r.stderr).toMatch(/\[venv-box\s*\] install\s+venv attempt 1\/3: ok/);
    expect(r.stderr).toMatch(/\[native-box\] install\s+venv attempt 3\/3: failed/);
    expect(r.stderr).toMatch(/\[native-box\] install\s+native attempt 1\/3: ok/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/venv-box\s+deployed\s+venv\s/);
    expect(r.stdout).toMatch(/native-box\s+deployed\s+native\s/);
    const commit = gitHead(REPO);
    for (const [host, port] of [[th.hosts.venv.host, venvPort], [th.hosts.native.host, nativePort]] as const) {
      const probe = await probeInstalled(host, port);
      expect(probe.ok && probe.health.commit).toBe(commit);
    }
    const logs = fs.readdirSync(path.join(dir, 'home', 'build_logs'));
    expect(logs.filter((f) => f.startsWith('build_venv-box_'))).toHaveLength(1);
    const all = logs.map((f) => fs.readFileSync(path.join(dir, 'home', 'build_logs', f), 'utf8')).join('');
    expect(all).not.toContain(token);
    expect(r.stderr + r.stdout).not.toContain(token);
  });

  it('--json prints the results for scripts', async () => {
    const r = await d8(['up', '--stack', 'systest', '--dir', dir, '--engine', 'direct', '--slave', 'venv-box', '--json'], env);
    expect(r.code).toBe(0);
    const results = JSON.parse(r.stdout);
    expect(results).toEqual([expect.objectContaining({ slave: 'venv-box', engine: 'direct', ok: true, strategy: 'venv' })]);
  });

  it('a bad stack config is an error naming the key, before anything is deployed', async () => {
    const r = await d8(['up', '--stack', 'bad', '--dir', dir, '--engine', 'direct'], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('d8:slaves[0] (box).agentPort');
    const unknown = await d8(['up', '--stack', 'systest', '--dir', dir, '--engine', 'direct', '--slave', 'nope'], env);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('stack systest has no slave named "nope" (it has: venv-box, native-box)');
  });

  it('host: local installs on this machine with a local shell, no SSH', async () => {
    const home = path.join(dir, 'local-home');
    fs.mkdirSync(home);
    const port = await freePort();
    fs.writeFileSync(path.join(dir, 'Pulumi.local.yaml'), `config:
  d8:installDelaySeconds: 1
  d8:slaves:
    - { name: here, host: local, agentPort: ${port}, strategies: [venv, native] }
`);
    const localEnv = { ...env, HOME: home };
    try {
      const r = await d8(['up', '--stack', 'local', '--dir', dir, '--engine', 'direct', '--json'], localEnv);
      expect(r.stderr).toContain('running on this machine (host: local)');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ slave: 'here', ok: true, strategy: 'venv' })]);
      const probe = await probeInstalled('127.0.0.1', port);
      expect(probe.ok && probe.health.install_strategy).toBe('venv');
      expect(fs.existsSync(path.join(home, '.d8-agent', `agent-${port}.pid`))).toBe(true);
    } finally {
      const bundles = path.join(home, '.d8-agent', 'bundles');
      for (const b of fs.existsSync(bundles) ? fs.readdirSync(bundles) : []) {
        spawnSync('sh', [path.join(bundles, b, 'uninstall.sh'), '--port', String(port)], { env: localEnv });
      }
    }
    expect(fs.existsSync(path.join(home, '.d8-agent'))).toBe(false);
    expect((await probeInstalled('127.0.0.1', port, 1000)).ok).toBe(false);
  });

  it('bootstrap-script writes a 0700 self-contained script that installs the agent when run on the host', async () => {
    const file = path.join(dir, 'install-venv-box.sh');
    const g = await d8(['bootstrap-script', 'venv-box', '--stack', 'systest', '--dir', dir, '-o', file, '--master', 'pi.test'], env);
    expect(g.code).toBe(0);
    expect(fs.statSync(file).mode & 0o777).toBe(0o700);
    expect(g.stdout + g.stderr).not.toContain(token);

    // Nothing of a previous install is left on the host: the script must bring everything itself.
    uninstallAsUser(REPO, th.hosts.venv.user);
    expect(fs.existsSync(path.join(th.hosts.venv.home, '.d8-agent'))).toBe(false);

    const ssh = await new NodeSSH().connect({ host: th.hosts.venv.host, port: th.hosts.venv.port, username: th.hosts.venv.user, privateKey: fs.readFileSync(th.key, 'utf8') });
    try {
      await ssh.putFile(file, `${th.hosts.venv.home}/install-venv-box.sh`);
      const run = await ssh.execCommand('sh ./install-venv-box.sh', { cwd: th.hosts.venv.home });
      expect(run.stderr).toContain('d8 bootstrap: the agent runs on port');
      expect(run.stderr).toContain('(pi.test)');
      expect(run.code).toBe(0);
      const result = parseInstallOutput(run.stdout);
      expect(result).toMatchObject({ ok: true, strategy: 'venv' });
      await ssh.execCommand('rm -f ./install-venv-box.sh');
    } finally {
      ssh.dispose();
    }
    const probe = await probeInstalled(th.hosts.venv.host, venvPort);
    expect(probe.ok && probe.health.install_strategy).toBe('venv');
    expect(agentPids(th.hosts.venv.user, venvPort)).toHaveLength(1);
    // The script carried venv-box's own token: the agent takes it and refuses the fleet token and native-box's.
    const own = (s: string) => (JSON.parse(fs.readFileSync(path.join(dir, 'home', 'tokens', 'systest', `${s}.json`), 'utf8')) as { current: string }).current;
    const exec = async (t: string) => (await httpRequest({ host: th.hosts.venv.host, port: venvPort, method: 'POST', path: '/api/execute', headers: { Authorization: `Bearer ${t}` }, body: { command: 'true', kind: 'shell' } })).status;
    expect(await exec(own('venv-box'))).toBe(200);
    expect(await exec(token)).toBe(401);
    expect(await exec(own('native-box'))).toBe(401);
  });
});
