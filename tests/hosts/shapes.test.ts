/**
 * The host shapes that need the shipped Node runtime, (a) a fresh VPS and (e) a host with no route to
 * any mirror, are what they claim: reachable over SSH with the test key, python3 but no node, and for
 * (e) no way out to a package mirror. Deploy tests on them belong with the runtime push.
 */
import { execFile, execFileSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { promisify } from 'util';
import { describeTier } from '../support/tier';
import { freePort } from '../system/support/hosts';
import { hostsTier, makeSshKey, removeContainerHost, startContainerHost, type ContainerHost } from './support/tier';

jest.setTimeout(3 * 60 * 1000);
const execFileP = promisify(execFile);

async function overSsh(h: ContainerHost, key: string, script: string): Promise<string> {
  const r = await execFileP('ssh', ['-i', key, '-p', String(h.sshPort), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', `${h.user}@${h.host}`, script], { timeout: 60_000 });
  return r.stdout;
}

const MIRROR_PROBE = 'if curl -sS -m 8 -o /dev/null http://deb.debian.org/debian/dists/bookworm/Release 2>/dev/null; then echo mirror:yes; else echo mirror:no; fi';

describeTier(hostsTier, 'host shapes for the runtime push', () => {
  // Made on first use: concurrent tests may start before a beforeAll hook has run.
  let dir: string | null = null;
  let key: string | null = null;
  const keyPath = (): string => (key ??= makeSshKey((dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8h-shapes-')))));
  const hosts: ContainerHost[] = [];
  afterAll(() => {
    for (const h of hosts) removeContainerHost(h);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it.concurrent.each(['fresh', 'offline'] as const)('%s: SSH works, python3 is there, node is not', async (shape) => {
    const key = keyPath();
    const h = await startContainerHost(shape, { key, sshPort: await freePort(), agentPort: await freePort() });
    hosts.push(h);
    const out = await overSsh(h, key, 'id -un; command -v node || echo node:none; python3 -c "import venv, sys; print(sys.version_info[0])"; ' + MIRROR_PROBE);
    expect(out.split('\n')).toEqual(['d8', 'node:none', '3', shape === 'offline' ? 'mirror:no' : 'mirror:yes', '']);
    if (shape === 'offline') {
      // Nothing is published: the only way in is the internal bridge's IP, from this machine.
      expect(execFileSync('docker', ['port', h.container], { encoding: 'utf8' }).trim()).toBe('');
    }
  });
});
