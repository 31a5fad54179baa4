/**
 * startDashboard in-process on a real store: it never takes the master down. A port in use, a
 * disabled dashboard or an unusable D8_DASHBOARD_TOKEN is one log line naming the fix, and null.
 */
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import { Writable } from 'stream';
import pino from 'pino';
import { startDashboard } from '../../master/dashboard';
import { FleetControl } from '../../master/control';
import { openStore, type Store } from '../../master/store';
import { resolveFleetConfig, type DashboardConfig } from '../../core/stack-config';
import { freePort } from './master-support/fleet';
import { REPO_ROOT } from '../support/agent-process';

describe('startDashboard', () => {
  let home: string;
  let store: Store;
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }));

  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-dash-start-'));
    store = openStore(path.join(home, 'master.db'));
    lines.length = 0;
  });
  afterEach(() => {
    store.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  const start = (dashboard: Partial<DashboardConfig>, env: NodeJS.ProcessEnv = {}) => {
    const config = resolveFleetConfig({ slaves: [{ name: 'a', host: 'local', agentPort: 1 }], dashboard }, { stack: 's', env: {} });
    const control = new FleetControl({ config, store, repoDir: REPO_ROOT });
    return startDashboard({ config, store, control, repoDir: REPO_ROOT, logger, env: { D8_HOME: home, ...env } });
  };

  it('a port in use: null and the fix, the process goes on', async () => {
    const port = await freePort();
    const squatter = net.createServer().listen(port, '127.0.0.1');
    await new Promise((r) => squatter.once('listening', r));
    try {
      expect(await start({ port })).toBeNull();
      expect(lines.join('')).toContain(`dashboard not started: port ${port} on 127.0.0.1 is in use; set d8:dashboard.port / d8:dashboard.bind, or d8:dashboard.enabled: false`);
    } finally {
      squatter.close();
    }
  });

  it('an address this host does not have: null and the fix', async () => {
    expect(await start({ port: await freePort(), bind: '192.0.2.1' }, { D8_DASHBOARD_TOKEN: 'a-strong-token-1234567890abcdefXYZ' })).toBeNull();
    expect(lines.join('')).toContain('192.0.2.1 is not an address of this host');
  });

  it('disabled: null, said once', async () => {
    expect(await start({ enabled: false })).toBeNull();
    expect(lines.join('')).toContain('dashboard disabled (d8:dashboard.enabled: false)');
  });

  it('off loopback with a weak D8_DASHBOARD_TOKEN: not started, the token never logged', async () => {
    expect(await start({ port: await freePort(), bind: '127.0.0.2' }, { D8_DASHBOARD_TOKEN: 'hunter2-hunter2' })).toBeNull();
    const log = lines.join('');
    expect(log).toContain('D8_DASHBOARD_TOKEN is unusable');
    expect(log).not.toContain('hunter2');
  });

  it('starts and stops cleanly on a free port', async () => {
    const port = await freePort();
    const d = await start({ port });
    expect(d?.url).toBe(`http://127.0.0.1:${port}/`);
    await d!.stop();
    const again = await start({ port });
    expect(again).not.toBeNull();
    await again!.stop();
  });
});
