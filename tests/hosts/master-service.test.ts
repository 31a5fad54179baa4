/**
 * The master as a systemd service on a separate systemd host (the `sudo` shape: passwordless sudo
 * for d8; its own node is apt's 18, below the engines floor). The host gets a clone of this checkout
 * in /home/d8/d8-fleet (a real git repository with a stack of no slaves), this repository's
 * node_modules read-only, and this machine's node (≥ 20) and git. The real `d8 master install`:
 *   - as d8 through sudo: the unit runs that node (not /usr/bin/node), is active, `d8 status` sees
 *     the daemon; `systemctl stop` ends it with exit 0 inside TimeoutStopSec; it is back after a
 *     restart and after the host reboots; `d8 master uninstall` leaves no unit and no daemon;
 *   - as root for d8 (`--user d8`): the env file is created for d8, mode 0600;
 *   - as a user with neither: exit 3 and the exact command to run as root.
 */
import { execFileSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { describeTier } from '../support/tier';
import { freePort, REPO } from '../system/support/hosts';
import { hostsTier, makeSshKey, rebootHost, removeContainerHost, rootExec, startContainerHost, type ContainerHost } from './support/tier';

jest.setTimeout(5 * 60 * 1000);

const CHECKOUT = '/home/d8/d8-fleet';
const NODE = '/opt/d8-node/bin/node';
const STACK = 'svctest';
const UNIT = 'd8-master.service';

function exec(h: ContainerHost, user: string, script: string): { code: number; out: string; err: string } {
  try {
    const out = execFileSync('docker', ['exec', '-u', user, '-w', '/', h.container, 'sh', '-lc', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    return { code: 0, out, err: '' };
  } catch (e) {
    const x = e as { status?: number; stdout?: string; stderr?: string };
    return { code: x.status ?? -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

function show(h: ContainerHost, props: string[]): Record<string, string> {
  const r = rootExec(h, `systemctl show ${UNIT} ${props.map((p) => `-p ${p}`).join(' ')}`);
  return Object.fromEntries(r.out.trim().split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** `d8 status --json` as `user`, until it reports a running daemon (the store's heartbeat). */
async function daemonPid(h: ContainerHost, user: string, home: string): Promise<number> {
  for (let i = 0; i < 60; i++) {
    const r = exec(h, user, `D8_HOME=${home} ${NODE} ${CHECKOUT}/bin/d8.js status --stack ${STACK} --json`);
    if (r.code === 0) {
      const d = (JSON.parse(r.out) as { master: { daemon: { running: boolean; pid: number | null } } }).master.daemon;
      if (d.running && d.pid) return d.pid;
    }
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`d8 status never saw a running daemon on ${h.container}`);
}

/** A clone of this checkout (tracked files + dist/) with a stack of no slaves, committed. */
function makeClone(dir: string): string {
  const clone = path.join(dir, 'd8-fleet');
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: REPO, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const f of [...files]) {
    const src = path.join(REPO, f);
    if (!fs.existsSync(src)) continue;
    fs.mkdirSync(path.dirname(path.join(clone, f)), { recursive: true });
    fs.copyFileSync(src, path.join(clone, f));
  }
  fs.cpSync(path.join(REPO, 'dist'), path.join(clone, 'dist'), { recursive: true });
  fs.writeFileSync(path.join(clone, `Pulumi.${STACK}.yaml`), 'config:\n  d8:slaves: []\n  d8:checkIntervalSeconds: 5\n');
  const git = (args: string[]): void => { execFileSync('git', ['-c', 'user.email=t@d8', '-c', 'user.name=t', ...args], { cwd: clone, stdio: 'ignore' }); };
  git(['init', '-q', '-b', 'main']);
  git(['add', '-A']);
  git(['commit', '-q', '-m', 'clone']);
  return clone;
}

let host: ContainerHost | null = null;
let dir = '';

describeTier(hostsTier, 'd8 master install: the master as a systemd service on a real host', () => {
  beforeAll(async () => {
    if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: build first (npm run build)');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8h-svc-'));
    const clone = makeClone(dir);
    const sshPort = await freePort();
    host = await startContainerHost('sudo', {
      key: makeSshKey(dir), sshPort, agentPort: await freePort(),
      volumes: [`${fs.realpathSync(path.join(REPO, 'node_modules'))}:${CHECKOUT}/node_modules:ro`, `${process.execPath}:${NODE}:ro`, `${fs.realpathSync('/usr/bin/git')}:/usr/local/bin/git:ro`],
    });
    execFileSync('sh', ['-c', `tar -C ${clone} -cf - . | docker exec -i ${host.container} tar -C ${CHECKOUT} -xf - && docker exec ${host.container} sh -c 'chown -R d8: ${CHECKOUT} 2>/dev/null; useradd -m nosudo'`], { stdio: 'ignore' });
  });

  afterAll(() => {
    if (host) removeContainerHost(host);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('as a user with sudo: installed, seen by d8 status, stops cleanly, survives restart and reboot, uninstalls', async () => {
    const h = host!;
    const r = exec(h, 'd8', `${NODE} ${CHECKOUT}/bin/d8.js master install --stack ${STACK} --json`);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
    const res = JSON.parse(r.out) as { unitPath: string; envFile: string; envCreated: boolean; node: { path: string; source: string }; user: string; follow: string };
    expect(res).toMatchObject({ unitPath: `/etc/systemd/system/${UNIT}`, envFile: '/home/d8/.d8/master.env', envCreated: true, user: 'd8', node: { path: NODE, source: 'running' } });
    expect(res.follow).toBe(`journalctl -u ${UNIT} -f`);
    expect(rootExec(h, `stat -c '%a %U' /home/d8/.d8/master.env`).out.trim()).toBe('600 d8');
    expect(rootExec(h, `grep -E '^(ExecStart|Environment)=' /etc/systemd/system/${UNIT}`).out).not.toMatch(/NODE_OPTIONS|\/usr\/bin\/node/);

    let st = show(h, ['ActiveState', 'MainPID', 'UnitFileState']);
    expect(st).toMatchObject({ ActiveState: 'active', UnitFileState: 'enabled' });
    expect(await daemonPid(h, 'd8', '/home/d8/.d8')).toBe(Number(st.MainPID));
    expect(rootExec(h, `ps -o user=,args= -p ${st.MainPID}`).out.trim().replace(/\s+/g, ' ')).toBe(`d8 ${NODE} --max-old-space-size=96 ${CHECKOUT}/bin/d8.js master --stack ${STACK}`);

    expect(exec(h, 'd8', `sudo -n systemctl stop ${UNIT}`).code).toBe(0);
    // Result=success, not timeout: the daemon exited by itself within TimeoutStopSec, with status 0.
    expect(show(h, ['ActiveState', 'Result', 'ExecMainCode', 'ExecMainStatus'])).toEqual({ ActiveState: 'inactive', Result: 'success', ExecMainCode: '1', ExecMainStatus: '0' });

    expect(exec(h, 'd8', `sudo -n systemctl restart ${UNIT}`).code).toBe(0);
    st = show(h, ['ActiveState', 'MainPID']);
    expect(st.ActiveState).toBe('active');
    expect(await daemonPid(h, 'd8', '/home/d8/.d8')).toBe(Number(st.MainPID));

    await rebootHost(h);
    st = show(h, ['ActiveState', 'MainPID']);
    expect(st.ActiveState).toMatch(/^(active|activating)$/);
    expect(await daemonPid(h, 'd8', '/home/d8/.d8')).toBe(Number(show(h, ['MainPID']).MainPID));

    const u = exec(h, 'd8', `${NODE} ${CHECKOUT}/bin/d8.js master uninstall --json`);
    expect(u.code).toBe(0);
    expect(JSON.parse(u.out)).toMatchObject({ ok: true, removed: true });
    expect(rootExec(h, `ls /etc/systemd/system/${UNIT} /etc/systemd/system/*/${UNIT} 2>/dev/null`).out.trim()).toBe('');
    expect(show(h, ['LoadState']).LoadState).toBe('not-found');
    expect(rootExec(h, `pgrep -f '[d]8.js master' || true`).out.trim()).toBe('');
    // The env file (the secrets) is kept.
    expect(rootExec(h, 'stat -c %a /home/d8/.d8/master.env').out.trim()).toBe('600');
  });

  it('as root for d8: the same unit, the env file created for d8; uninstall as root', async () => {
    const h = host!;
    rootExec(h, 'rm -rf /home/d8/.d8');
    const r = exec(h, 'root', `${NODE} ${CHECKOUT}/bin/d8.js master install --stack ${STACK} --user d8`);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
    expect(r.out).toContain(`follow the log:  journalctl -u ${UNIT} -f`);
    expect(rootExec(h, `stat -c '%a %U' /home/d8/.d8 /home/d8/.d8/master.env`).out.trim().split('\n')).toEqual(['700 d8', '600 d8']);
    const st = show(h, ['ActiveState', 'MainPID', 'User']);
    expect(st).toMatchObject({ ActiveState: 'active', User: 'd8' });
    expect(await daemonPid(h, 'd8', '/home/d8/.d8')).toBe(Number(st.MainPID));
    // Installing again replaces the running daemon: the new unit's command line is the one running.
    expect(exec(h, 'root', `${NODE} ${CHECKOUT}/bin/d8.js master install --stack ${STACK} --user d8 --heap-mb 128`).code).toBe(0);
    const pid = show(h, ['MainPID']).MainPID;
    expect(rootExec(h, `ps -o args= -p ${pid}`).out.trim()).toBe(`${NODE} --max-old-space-size=128 ${CHECKOUT}/bin/d8.js master --stack ${STACK}`);
    expect(rootExec(h, 'stat -c %a /home/d8/.d8/master.env').out.trim()).toBe('600');
    expect(exec(h, 'root', `${NODE} ${CHECKOUT}/bin/d8.js master uninstall`).code).toBe(0);
    expect(show(h, ['LoadState']).LoadState).toBe('not-found');
  });

  it('without root or sudo: exit 3 and the exact command to run as root; nothing written', () => {
    const h = host!;
    const r = exec(h, 'nosudo', `${NODE} ${CHECKOUT}/bin/d8.js master install --stack ${STACK}`);
    expect(r.code).toBe(3);
    expect(r.err).toContain('not root, and sudo -n asks for a password (or is not allowed)');
    expect(r.err).toContain(`sudo ${NODE} ${CHECKOUT}/bin/d8.js master install --stack ${STACK} --user nosudo --d8-home /home/nosudo/.d8 --heap-mb 96`);
    expect(rootExec(h, `ls /etc/systemd/system/${UNIT} /home/nosudo/.d8 2>&1`).out).toMatch(/No such file or directory[\s\S]*No such file or directory/);
  });
});
