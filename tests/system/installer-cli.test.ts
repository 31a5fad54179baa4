/**
 * install.sh / uninstall.sh as programs, run with dash on this machine (no test hosts needed):
 * argument errors still end with the JSON result line, the token never reaches argv or output,
 * and the bundle builder's hash ignores only the build time.
 */
import { spawn } from 'child_process';
import fs from 'fs';
import path from 'path';
import { buildBundle, bundleHash, requirementsText, BundleBuildError, type BundleInfo } from '../../agent/bundle/build';
import { parseInstallOutput } from '../../core/install-result';
import { runProcess, type Run } from '../support/run-process';
import { freePort, randomToken, tempDir } from '../../scripts/test-hosts/hosts';

jest.setTimeout(3 * 60 * 1000);

const DASH = fs.existsSync('/usr/bin/dash') ? '/usr/bin/dash' : 'sh';

function sh(script: string, args: string[], opts: { stdin?: string; home: string }): Promise<Run> {
  return runProcess(DASH, [script, ...args], { env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: opts.home }, stdin: opts.stdin ?? '' });
}

/** A bin directory with the usual tools but no node: a host where the agent cannot run. */
function binWithoutNode(dir: string): string {
  const bin = path.join(dir, 'bin-without-node');
  fs.mkdirSync(bin, { recursive: true });
  for (const t of ['sh', 'dirname', 'sed', 'head', 'cut', 'tr', 'mkdir', 'chmod', 'mv', 'rm', 'cp', 'cat', 'date', 'awk', 'mawk',
    'grep', 'tail', 'sleep', 'id', 'setsid', 'curl', 'cmp', 'env', 'ls', 'sort', 'python3']) {
    const src = ['/usr/bin', '/bin'].map((d) => path.join(d, t)).find((p) => fs.existsSync(p));
    if (src && !fs.existsSync(path.join(bin, t))) fs.symlinkSync(fs.realpathSync(src), path.join(bin, t));
  }
  return bin;
}

describe('install.sh and the bundle, locally', () => {
  let dir: string;
  let bundle: BundleInfo;
  let home: string;

  beforeAll(async () => {
    dir = tempDir('d8-installer-cli-');
    home = path.join(dir, 'home');
    fs.mkdirSync(home);
    bundle = await buildBundle({ outRoot: path.join(dir, 'bundles') });
  });
  afterAll(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

  it.each([
    [['--strategies', 'docker,podman', '--token-stdin'], /unknown strategy 'podman'/],
    [['--attempts', '0', '--token-stdin'], /--attempts must be a whole number >= 1/],
    [['--port', '70000', '--token-stdin'], /--port must be 1-65535/],
    [['--port'], /--port needs a value/],
    [[], /no token: pass --token-stdin/],
    [['--bogus'], /unknown argument: --bogus/],
  ])('rejects %j with exit 2, a clear message and the JSON result line', async (args, message) => {
    const r = await sh(path.join(bundle.dir, 'install.sh'), args as string[], { home, stdin: `${randomToken()}\n` });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message as RegExp);
    expect(parseInstallOutput(r.stdout)).toEqual({ ok: false, strategy: null, attempts: [] });
  });

  it('an empty stdin is refused (no token)', async () => {
    const r = await sh(path.join(bundle.dir, 'install.sh'), ['--token-stdin', '--strategies', 'native'], { home, stdin: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--token-stdin: stdin was empty');
  });

  it('stores the token 0600, never prints it, and fails cleanly when the agent cannot run', async () => {
    const token = randomToken();
    const port = await freePort();
    // A PATH without node: the native strategy must fail with 127 (not available) on every attempt.
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(DASH, [path.join(bundle.dir, 'install.sh'), '--strategies', 'native', '--attempts', '2', '--delay', '0',
        '--port', String(port), '--token-stdin'], { env: { PATH: binWithoutNode(dir), HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(`${token}\n`);
    });
    const result = parseInstallOutput(r.stdout);
    expect(r.code).toBe(1);
    expect(result.ok).toBe(false);
    expect(result.attempts.map((a) => [a.strategy, a.attempt, a.exit_code])).toEqual([['native', 1, 127], ['native', 2, 127]]);
    expect(r.stdout + r.stderr).not.toContain(token);
    const tokenFile = path.join(home, '.d8-agent', `agent-token-${port}`);
    expect(fs.readFileSync(tokenFile, 'utf8').trim()).toBe(token);
    expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(home, '.d8-agent')).mode & 0o777).toBe(0o700);
    const un = await sh(path.join(bundle.dir, 'uninstall.sh'), ['--port', String(port)], { home });
    expect(un.code).toBe(0);
    expect(fs.existsSync(path.join(home, '.d8-agent'))).toBe(false);
  });

  it('the bundle hash covers the content but not the build time', async () => {
    const again = await buildBundle({ outRoot: path.join(dir, 'bundles2') });
    expect(again.hash).toBe(bundle.hash);
    expect(fs.readFileSync(path.join(again.dir, 'BUNDLE_HASH'), 'utf8').trim()).toBe(again.hash);
    const withReq = await buildBundle({ outRoot: path.join(dir, 'bundles3'), requirements: ['requests==2.31.0'] });
    expect(withReq.hash).not.toBe(bundle.hash);
    expect(fs.readFileSync(path.join(withReq.dir, 'requirements.txt'), 'utf8')).toBe('requests==2.31.0\n');
    fs.appendFileSync(path.join(withReq.dir, 'install.sh'), '\n# edited\n');
    expect(bundleHash(withReq.dir)).not.toBe(withReq.hash);
  });

  it('requirements must be plain requirement lines', () => {
    expect(requirementsText([])).toBe('');
    expect(() => requirementsText(['--index-url http://evil'])).toThrow(BundleBuildError);
    expect(() => requirementsText(['a\nb'])).toThrow(/one non-empty line/);
  });
});
