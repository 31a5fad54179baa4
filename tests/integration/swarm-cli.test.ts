/** `d8 up` and `d8 rotate-token` in swarm mode, through the real CLI (dist/: `npm run build` first). */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { runD8 } from '../support/run-process';

const REPO = path.join(__dirname, '..', '..');

/** Pulumi.sw.yaml: one node behind a swarm manager nobody listens for. */
function writeSwarmStack(dir: string, fleetToken: string): void {
  fs.writeFileSync(path.join(dir, 'Pulumi.sw.yaml'), [
    'config:', '  d8:swarm: ssh://d8@127.0.0.1:9', `  d8:agentToken: ${fleetToken}`,
    '  d8:slaves:', '    - name: n1', '      host: 127.0.0.1', '      user: d8', '',
  ].join('\n'));
}

describe('d8 up in swarm mode', () => {
  it('refuses the direct engine with the fix, before touching any host', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-swarm-cli-'));
    try {
      writeSwarmStack(dir, 't'.repeat(40));
      const r = await runD8(REPO, ['up', '--stack', 'sw', '--dir', dir, '--engine', 'direct'], { ...process.env, D8_HOME: dir });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('stack sw: swarm mode (d8:swarm) deploys only through Pulumi: install the Pulumi CLI');
      expect(fs.existsSync(path.join(dir, 'build_logs'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('d8 rotate-token refuses a swarm stack, naming how its shared token is rotated', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-swarm-cli-'));
    try {
      writeSwarmStack(dir, 't0123456789'.repeat(4));
      const r = await runD8(REPO, ['rotate-token', '--all', '--stack', 'sw', '--dir', dir], { ...process.env, D8_HOME: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('d8: stack sw is in swarm mode (d8:swarm): its agents share the fleet token (one docker secret); rotate it by setting a new d8:agentToken (or D8_AGENT_TOKEN) and running d8 up\n');
      expect(fs.existsSync(path.join(dir, 'tokens'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
