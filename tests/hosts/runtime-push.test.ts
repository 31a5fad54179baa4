/**
 * Hosts without node get the master's Node.js runtime over SSH: (a) a fresh VPS (python3, no node,
 * no docker) and (e) a host with no route to any mirror (an internal Docker network, reached by its
 * bridge IP only). The real `d8 up --engine direct` CLI fetches the runtime from a loopback mirror of
 * this machine's node (the host could not reach it: it is on the master's loopback), pushes it, and
 * the agent runs on it; it outlives the SSH session. Neither shape has polkit, sudo or cron, so the
 * installer can only use setsid: the designed outcome is one warning at deploy time, `reboot_safe:
 * false`, and no agent after a reboot. Uninstall leaves no unit, crontab line or process.
 */
import fs from 'fs';
import path from 'path';
import { runD8 } from '../support/run-process';
import { describeTier } from '../support/tier';
import { freePort, randomToken, REPO } from '../system/support/hosts';
import {
  hostsTier, rebootHost, HOST_SHAPES, rootExec, startContainerHost, traces,
} from './support/tier';
import { HostsFixture } from './support/fixture';
import { health, healthWithin, sleep, uninstallOverSsh } from './support/agent';

jest.setTimeout(6 * 60 * 1000);

describeTier(hostsTier, 'the shipped runtime on hosts without node (real d8 up over SSH)', () => {
  const token = randomToken();
  const fx = new HostsFixture('d8h-rt-');
  afterAll(() => fx.cleanup());

  it.concurrent.each(['fresh', 'offline'] as const)('%s: d8 up pushes the runtime, the agent runs on it, setsid as designed, uninstall is clean', async (shape) => {
    const { dir, key, mirror, server } = await fx.setup();
    const h = fx.track(await startContainerHost(shape, { key, sshPort: await freePort(), agentPort: await freePort() }));
    const name = `${shape}-box`;
    const stackDir = path.join(dir, shape);
    fs.mkdirSync(stackDir);
    fs.writeFileSync(path.join(stackDir, 'Pulumi.hosts.yaml'), `config:
  d8:sshKeyPath: ${key}
  d8:installDelaySeconds: 1
  d8:nodeDistUrl: ${server.url}
  d8:nodeVersion: ${mirror.version}
  d8:slaves:
    - { name: ${name}, host: ${h.host}, agentHost: ${h.host}, user: ${h.user}, sshPort: ${h.sshPort}, agentPort: ${h.agentPort}, strategies: [docker, venv, native] }
`);
    const env = { ...process.env, D8_HOME: path.join(stackDir, 'home'), D8_AGENT_TOKEN: token, D8_SSH_KEY_PATH: '', D8_SSH_PRIVATE_KEY: '' };
    const up = await runD8(REPO, ['up', '--stack', 'hosts', '--dir', stackDir, '--engine', 'direct'], env);
    const out = `${up.stdout}\n${up.stderr}`;
    if (up.code !== 0) throw new Error(`d8 up on ${shape} exited ${up.code}:\n${out}`);
    expect(up.stdout).toMatch(new RegExp(`${name}\\s+deployed\\s+venv\\s`));
    // The probe line before the first attempt, then the push.
    expect(up.stderr).toMatch(new RegExp(`d8@x86_64 \\(x64\\) .*node: push ${mirror.version} x64; docker no, venv ok, native ok`));
    expect(up.stderr).toMatch(new RegExp(`node ${mirror.version} \\(x64\\) pushed and checked in [\\d.]+ s`));
    expect(up.stderr).toMatch(/warning: the agent runs under setsid only and will NOT come back after a reboot/);
    expect(out).not.toContain(token);
    // The master fetched the runtime from its loopback mirror; the host never could.
    expect(server.requests.filter((r) => r === `/${mirror.version}/${path.basename(mirror.tarball)}`).length).toBeGreaterThanOrEqual(1);

    const first = await health(h);
    expect(first).toMatchObject({ supervisor: HOST_SHAPES[shape].supervisor, reboot_safe: false, install_strategy: 'venv', node_version: mirror.version.replace(/^v/, '') });
    // Seen from inside the host, independent of what the agent says: the process runs the pushed binary
    // (its argv[0]: /proc/<pid>/exe of another user needs CAP_SYS_PTRACE, which a container's root lacks).
    const runtime = `/home/d8/.d8-agent/runtime/node-${mirror.version}-linux-x64`;
    const argv0 = rootExec(h, `for p in $(pgrep -u d8 -f 'agent-${h.agentPort}/agent[.]js'); do tr '\\000' '\\n' </proc/$p/cmdline | head -n 1; done | sort -u`);
    expect(argv0.out.trim()).toBe(`${runtime}/bin/node`);
    expect(rootExec(h, `cat ${runtime}/.d8-sha256`).out.trim()).toBe(mirror.sha256);
    expect(rootExec(h, 'command -v node || echo none').out.trim()).toBe('none');

    // The SSH session is over; logind keeps a user's manager ~10 s after the last logout.
    await sleep(15_000);
    const later = await health(h);
    expect(later).toMatchObject({ supervisor: HOST_SHAPES[shape].supervisor, commit: first!.commit });
    expect(later!.uptime_s).toBeGreaterThanOrEqual(15);

    // setsid is not reboot-safe: after a reboot the agent is gone, as the deploy warned.
    await rebootHost(h);
    expect(await healthWithin(h, 10_000)).toBeNull();

    expect(await uninstallOverSsh(h, key)).toContain('[d8-uninstall]');
    expect(traces(h)).toEqual({ units: [], cronLines: [], processes: [], linger: [] });
    expect(await health(h)).toBeNull();
  });
});
