/** `d8 up` and `d8 rotate-token` in swarm mode, through the real CLI (dist/: `npm run build` first). */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { runD8 } from '../support/run-process';

const REPO = path.join(__dirname, '..', '..');

/** Pulumi.sw.yaml: one node behind a swarm manager nobody listens for; a fleet token only when given. */
function writeSwarmStack(dir: string, fleetToken?: string): void {
  fs.writeFileSync(path.join(dir, 'Pulumi.sw.yaml'), [
    'config:', '  d8:swarm: ssh://d8@127.0.0.1:9', ...(fleetToken ? [`  d8:agentToken: ${fleetToken}`] : []),
    '  d8:slaves:', '    - name: n1', '      host: 127.0.0.1', '      user: d8', '',
  ].join('\n'));
}

const record = (dir: string): { current: string; previous: string | null; installed: boolean } =>
  JSON.parse(fs.readFileSync(path.join(dir, 'tokens', 'sw', 'n1.json'), 'utf8')) as { current: string; previous: string | null; installed: boolean };

describe('d8 up in swarm mode', () => {
  it('refuses the direct engine with the fix, before touching any host', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-swarm-cli-'));
    try {
      writeSwarmStack(dir);
      const r = await runD8(REPO, ['up', '--stack', 'sw', '--dir', dir, '--engine', 'direct'], { ...process.env, D8_HOME: dir });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('stack sw: swarm mode (d8:swarm) deploys only through Pulumi: install the Pulumi CLI');
      expect(fs.existsSync(path.join(dir, 'build_logs'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('d8 rotate-token refuses a swarm stack without --restart, saying why and what to pass', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-swarm-cli-'));
    try {
      writeSwarmStack(dir, 't0123456789'.repeat(4));
      const r = await runD8(REPO, ['rotate-token', '--all', '--stack', 'sw', '--dir', dir], { ...process.env, D8_HOME: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('d8: stack sw is in swarm mode (d8:swarm): a slave\'s token is its service\'s docker secret, and a new secret restarts the slave\'s agent ' +
        '(its checks fail for the seconds of the restart; no command is refused): pass --restart to rotate that way (a d8 up through Pulumi of the swarm\'s services)\n');
      expect(fs.existsSync(path.join(dir, 'tokens'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('d8 rotate-token --restart stages the new token next to the old, and a failed deploy keeps both for the next run', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-swarm-cli-'));
    // No Pulumi CLI on PATH: the deploy that would put the token in the service's secret fails.
    const env = { ...process.env, D8_HOME: dir, HOME: dir, PATH: '/nonexistent' };
    try {
      writeSwarmStack(dir);
      fs.mkdirSync(path.join(dir, 'tokens', 'sw'), { recursive: true, mode: 0o700 });
      const old = 'o'.repeat(43);
      fs.writeFileSync(path.join(dir, 'tokens', 'sw', 'n1.json'), JSON.stringify({ current: old, previous: null, installed: true, updated_at: new Date().toISOString() }), { mode: 0o600 });
      const r = await runD8(REPO, ['rotate-token', 'n1', '--restart', '--stack', 'sw', '--dir', dir, '--json'], env);
      expect(r.code).toBe(1);
      const [result] = JSON.parse(r.stdout) as Array<{ slave: string; ok: boolean; error: string }>;
      expect(result).toMatchObject({ slave: 'n1', ok: false });
      expect(result.error).toMatch(/^n1: the new token is staged, but the deploy that puts it in the service's secret failed \(config: .*no pulumi CLI on PATH/);
      const staged = record(dir);
      expect(staged).toMatchObject({ previous: old, installed: false });
      expect(staged.current).not.toBe(old);
      expect(fs.statSync(path.join(dir, 'tokens', 'sw', 'n1.json')).mode & 0o777).toBe(0o600);
      // Neither token in what the command printed.
      expect(r.stdout + r.stderr).not.toContain(staged.current);
      expect(r.stdout + r.stderr).not.toContain(old);
      // Run again: the staged token (maybe already in the secret) is kept, not replaced by a third.
      const again = await runD8(REPO, ['rotate-token', 'n1', '--restart', '--stack', 'sw', '--dir', dir, '--json'], env);
      expect(again.code).toBe(1);
      expect(record(dir)).toMatchObject({ current: staged.current, previous: old, installed: false });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('d8 rotate-token --restart is refused outside swarm mode', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-swarm-cli-'));
    try {
      fs.writeFileSync(path.join(dir, 'Pulumi.sw.yaml'), ['config:', '  d8:slaves:', '    - name: n1', '      host: 127.0.0.1', '      user: d8', ''].join('\n'));
      const r = await runD8(REPO, ['rotate-token', 'n1', '--restart', '--stack', 'sw', '--dir', dir], { ...process.env, D8_HOME: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('d8: --restart is for swarm mode only; stack sw rotates without a restart\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
