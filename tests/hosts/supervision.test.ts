/**
 * Real, separate hosts (systemd as PID 1, their own Debian root filesystem, reached over SSH on a
 * loopback port): `d8 up --engine direct` (the real CLI process) installs the agent, the installer
 * picks the best supervisor the host allows, the agent outlives the SSH session, a reboot
 * (`docker restart`) brings it back where the supervisor is reboot-safe and not where it is setsid
 * only, and uninstall leaves no unit, crontab line, linger or process behind.
 * The shapes run concurrently: each one is a separate container.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { AgentClient } from '../../master/agent-client';
import { SlaveTokens } from '../../core/slave-tokens';
import { openStore } from '../../master/store';
import { runD8, type Run } from '../support/run-process';
import { describeTier } from '../support/tier';
import { freePort, randomToken, REPO } from '../system/support/hosts';
import {
  hostsTier, makeSshKey, rebootHost, removeContainerHost, startContainerHost, traces,
  HOST_SHAPES, type ContainerHost, type HostShape,
} from './support/tier';
import { health, healthWithin, sleep, uninstallOverSsh } from './support/agent';

jest.setTimeout(6 * 60 * 1000);

const d8 = (args: string[], env: NodeJS.ProcessEnv): Promise<Run> => runD8(REPO, args, env);

let shared: Promise<{ dir: string; key: string }> | null = null;
function setup(): Promise<{ dir: string; key: string }> {
  shared ??= (async () => {
    if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) {
      throw new Error('dist/ is missing: build first (npm run build)');
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8h-test-'));
    return { dir, key: makeSshKey(dir) };
  })();
  return shared;
}

const started: ContainerHost[] = [];
const token = randomToken();

interface Case { shape: HostShape; rebootSafe: boolean; refusal: RegExp }
const CASES: Case[] = [
  // logind without polkit refuses a user's own linger: the reason must reach the deploy's output.
  { shape: 'node', rebootSafe: false, refusal: /no user unit: 'loginctl enable-linger d8' was refused: .+/ },
  { shape: 'cron', rebootSafe: true, refusal: /no user unit: 'loginctl enable-linger d8' was refused: .+/ },
  { shape: 'polkit', rebootSafe: true, refusal: /no system unit: not root, and sudo is not installed/ },
  { shape: 'root', rebootSafe: true, refusal: /supervisor: systemd system unit d8-agent-\d+\.service \(runs as root\)/ },
  { shape: 'sudolinger', rebootSafe: true, refusal: /'loginctl enable-linger d8' was refused: .+; enabled linger with sudo -n instead/ },
  { shape: 'sudo', rebootSafe: true, refusal: /supervisor: systemd system unit d8-agent-\d+\.service \(runs as d8\)/ },
];

describeTier(hostsTier, 'supervision on real hosts (systemd containers over SSH)', () => {
  afterAll(() => {
    for (const h of started) removeContainerHost(h);
    void shared?.then(({ dir }) => fs.rmSync(dir, { recursive: true, force: true }));
  });

  it.concurrent.each(CASES)('$shape: deploys, outlives the session, reboots as designed, uninstalls cleanly', async ({ shape, rebootSafe, refusal }) => {
    const { dir, key } = await setup();
    const expected = HOST_SHAPES[shape].supervisor;
    const t0 = Date.now();
    const h = await startContainerHost(shape, { key, sshPort: await freePort(), agentPort: await freePort() });
    started.push(h);
    const booted = Date.now();

    const stackDir = path.join(dir, shape);
    fs.mkdirSync(stackDir);
    fs.writeFileSync(path.join(stackDir, 'Pulumi.hosts.yaml'), `config:
  d8:sshKeyPath: ${key}
  d8:installDelaySeconds: 1
  d8:slaves:
    - { name: ${shape}-box, host: ${h.host}, agentHost: ${h.host}, user: ${h.user}, sshPort: ${h.sshPort}, agentPort: ${h.agentPort} }
`);
    const env = { ...process.env, D8_HOME: path.join(stackDir, 'home'), D8_AGENT_TOKEN: token, D8_SSH_KEY_PATH: '', D8_SSH_PRIVATE_KEY: '' };
    const up = await d8(['up', '--stack', 'hosts', '--dir', stackDir, '--engine', 'direct'], env);
    const deployed = Date.now();
    const out = `${up.stdout}\n${up.stderr}`;
    if (up.code !== 0) throw new Error(`d8 up on ${shape} exited ${up.code}:\n${out}`);
    expect(up.stdout).toMatch(new RegExp(`${shape}-box\\s+deployed\\s+venv\\s`));
    expect(up.stderr).toMatch(refusal);
    if (rebootSafe) expect(up.stderr).not.toMatch(/will NOT come back after a reboot/);
    else expect(up.stderr).toMatch(/warning: the agent runs under setsid only and will NOT come back after a reboot/);
    expect(out).not.toContain(token);

    const first = await health(h);
    expect(first).toMatchObject({ supervisor: expected, reboot_safe: rebootSafe, install_strategy: 'venv' });

    // The SSH session is over; logind keeps a user's manager ~10 s after the last logout.
    await sleep(15_000);
    const later = await health(h);
    expect(later).toMatchObject({ supervisor: expected, commit: first!.commit });
    expect(later!.uptime_s).toBeGreaterThanOrEqual(15);

    const r0 = Date.now();
    await rebootHost(h);
    const back = await healthWithin(h, rebootSafe ? 60_000 : 10_000);
    const rebooted = Date.now();
    if (rebootSafe) {
      expect(back).toMatchObject({ supervisor: expected, commit: first!.commit });
      expect(back!.uptime_s).toBeLessThan(later!.uptime_s); // a new process, not a survivor
    } else {
      expect(back).toBeNull();
    }

    if (rebootSafe) {
      // A restart through the API (a new process under cron/setsid, a unit restart under systemd) must
      // not leave uninstall a stale pid to miss.
      // The deploy gave this slave a token of its own (core/slave-tokens.ts); the fleet token no longer opens it.
      const own = SlaveTokens.forEnv('hosts', env).read(`${shape}-box`);
      expect(own).toMatchObject({ installed: true });
      expect(out).not.toContain(own!.current);
      // The agent speaks TLS pinned by the fingerprint its install reported over SSH (the store's agent_pins).
      const store = openStore(path.join(env.D8_HOME, 'master.db'));
      const pin = store.pins.get('hosts', `${shape}-box`);
      store.close();
      expect(pin).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
      const client = new AgentClient({ attempts: 1 });
      try {
        await client.restart({ agentHost: h.host, agentPort: h.agentPort, tlsFingerprint: pin }, own!.current);
      } finally {
        client.close();
      }
      await sleep(1500);
      const restarted = await healthWithin(h, 30_000);
      expect(restarted).toMatchObject({ supervisor: expected, commit: first!.commit });
    }

    const said = await uninstallOverSsh(h, key);
    expect(said).toContain('[d8-uninstall]');
    const left = traces(h);
    expect(left).toEqual({ units: [], cronLines: [], processes: [], linger: [] });
    expect(await health(h)).toBeNull();
    process.stderr.write(`[hosts] ${shape}: boot ${(booted - t0) / 1000}s, d8 up ${(deployed - booted) / 1000}s, ` +
      `reboot to ${rebootSafe ? 'healthy' : 'checked dead'} ${(rebooted - r0) / 1000}s, total ${(Date.now() - t0) / 1000}s\n`);
  });
});
