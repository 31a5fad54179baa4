/**
 * A direct-engine install that overruns its limit ends on the host too (issue 23 defect 5): the real
 * bundle and install.sh on `host: local`, under a temp HOME. Its port is taken by a stand-in that
 * answers /api/health, so the first attempt fails and the installer sleeps out its retry delay
 * (600 s), holding ~/.d8-agent.lock, past the deploy's 3 s limit.
 */
import { execFileSync, spawnSync } from 'child_process';
import fs from 'fs';
import http from 'http';
import os from 'os';
import path from 'path';
import type { AddressInfo } from 'net';
import { buildBundle } from '../../agent/bundle/build';
import { DirectDeployer } from '../../master/deploy/direct';
import { resolveFleetConfig } from '../../core/stack-config';

jest.setTimeout(180_000);

/** Live (not zombie) processes running with HOME=`home`: what the installer started. */
function processesWithHome(home: string): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (!fs.readFileSync(`/proc/${d}/environ`, 'utf8').split('\0').includes(`HOME=${home}`)) continue;
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      out.push(`${d} ${fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
    } catch { /* gone, or not ours */ }
  }
  return out;
}

describe('direct deployer: an install that times out (host local)', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-install-timeout-'));
  const slaveHome = path.join(root, 'slave-home');
  let squatter: http.Server;

  beforeAll(async () => {
    fs.mkdirSync(slaveHome);
    squatter = http.createServer((_req, res) => { res.setHeader('content-type', 'application/json'); res.end('{"status":"ok","commit":"someone-else"}'); });
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await new Promise((r) => squatter.close(r));
    for (const p of processesWithHome(slaveHome)) try { process.kill(Number(p.split(' ')[0]), 'SIGKILL'); } catch { /* gone */ }
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('leaves no process of the installer behind and the host installer lock free', async () => {
    const agentPort = (squatter.address() as AddressInfo).port;
    const config = resolveFleetConfig({
      slaves: [{ name: 'loc', host: 'local', agentPort, strategies: ['native'] }],
      installAttempts: 2, installDelaySeconds: 600,
    }, { stack: 'test', env: {} });
    const bundle = await buildBundle({ outRoot: path.join(root, 'bundles') });
    const env = { ...process.env, HOME: slaveHome, D8_HOME: path.join(root, 'd8') };
    const deployer = new DirectDeployer({ config, bundle, env, installTimeoutMs: 3000 });

    const r = await deployer.deploy(config.slaves[0], { reason: 'test', force: true });
    expect(r).toMatchObject({ ok: false, errorKind: 'timeout' });

    expect(processesWithHome(slaveHome)).toEqual([]);
    const lock = path.join(slaveHome, '.d8-agent.lock');
    expect(fs.existsSync(lock)).toBe(true); // the installer took it
    expect(spawnSync('flock', ['-n', lock, 'true']).status).toBe(0);
    expect(execFileSync('cat', [lock], { encoding: 'utf8' })).toMatch(/install\.sh --port/);
  });
});
