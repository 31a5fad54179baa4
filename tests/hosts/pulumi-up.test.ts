/**
 * `d8 up --engine pulumi` (the real CLI, the real pulumi engine from scripts/pulumi-toolchain.sh with
 * the stand-in command provider, this repository's program on a local file backend) onto separate
 * container hosts, with no `arch` in the stack config:
 *  - (a) a fresh VPS (no node): the deployer's probe finds it needs the x64 runtime and tells the
 *    program (D8_PROBED_RUNTIMES), which ships it with the bundle; the agent runs on it and outlives
 *    the SSH session;
 *  - (f) a musl-looking host (PATH shims): refused by the probe with the `unsupported` status before
 *    the engine runs; no runtime fetched, nothing left on the host, no resource in the stack.
 */
import fs from 'fs';
import path from 'path';
import { buildBundle } from '../../agent/bundle/build';
import { DEPLOY_EXIT_CODES } from '../../cli/exit-codes';
import { runD8 } from '../support/run-process';
import { describeTier, type TierCheck } from '../support/tier';
import { freePort, randomToken, REPO } from '../system/support/hosts';
import { createFleetProject, engineEnv, writeStackFile } from '../engine/support/fleet-project';
import { localBackendEnv, pulumiEngineTier, pulumiToolchain } from '../engine/support/toolchain';
import { hostsTier, rootExec, startContainerHost, type ContainerHost } from './support/tier';
import { HostsFixture } from './support/fixture';
import { expectUntouched, health, sleep } from './support/agent';
import { installShims, MUSL_SHIMS } from './support/shims';

jest.setTimeout(8 * 60 * 1000);

const tier: TierCheck = {
  tier: 'hosts',
  missing: () => hostsTier.missing() ?? pulumiEngineTier.missing(),
  enable: `${hostsTier.enable}; ${pulumiEngineTier.enable}`,
};

describeTier(tier, 'd8 up --engine pulumi on separate hosts: the runtime arch comes from the probe', () => {
  const token = randomToken();
  const fx = new HostsFixture('d8h-pulumi-');
  const backends: string[] = [];
  afterAll(async () => {
    await fx.cleanup();
    for (const d of backends) fs.rmSync(d, { recursive: true, force: true });
  });

  async function project(stack: string, h: ContainerHost, name: string) {
    const { dir, key, mirror, server } = await fx.setup();
    const work = path.join(dir, stack);
    const p = createFleetProject(path.join(work, 'project'));
    const bundle = await buildBundle({ outRoot: path.join(work, 'bundles') });
    writeStackFile(p.dir, stack, {
      sshKeyPath: key, installAttempts: 1, installDelaySeconds: 1, nodeDistUrl: server.url, nodeVersion: mirror.version,
      slaves: [{ name, host: h.host, user: h.user, sshPort: h.sshPort, agentPort: h.agentPort, strategies: ['docker', 'venv', 'native'], hostKey: h.hostKey }],
    });
    const backend = localBackendEnv('d8h-pulumi-backend-');
    backends.push(backend.dir);
    fs.mkdirSync(path.join(work, 'tmp'));
    const env = engineEnv(pulumiToolchain().env, backend.env, {
      D8_HOME: path.join(work, 'home'), D8_AGENT_TOKEN: token, D8_BUNDLE_DIR: bundle.dir, TMPDIR: path.join(work, 'tmp'),
      D8_SSH_KEY_PATH: '', D8_SSH_PRIVATE_KEY: '',
    });
    return { p, env, mirror, server, bundle, home: path.join(work, 'home'), backend: backend.dir };
  }

  it('fresh (no node, no arch in the config): the runtime arrives with the bundle, the agent runs on it and outlives the session', async () => {
    const { key } = await fx.setup();
    const h = fx.track(await startContainerHost('fresh', { key, sshPort: await freePort(), agentPort: await freePort() }));
    const name = 'fresh-box';
    const { p, env, mirror, server, bundle, home } = await project('fresh', h, name);

    const up = await runD8(REPO, ['up', '--stack', 'fresh', '--dir', p.dir, '--engine', 'pulumi', '--json'], env);
    const out = `${up.stdout}\n${up.stderr}`;
    if (up.code !== 0) throw new Error(`d8 up --engine pulumi exited ${up.code}:\n${out}`);
    const [r] = JSON.parse(up.stdout) as Array<{ status: string; strategy: string; commit: string; buildLogPath: string }>;
    expect(r).toMatchObject({ status: 'deployed', strategy: 'venv', commit: bundle.versionInfo.commit });
    expect(up.stderr).toMatch(new RegExp(`\\[${name}\\] probe +d8@x86_64 \\(x64\\) .*node: push ${mirror.version} x64; docker no, venv ok, native ok`));
    expect(out).not.toContain(token);
    // The program shipped it because the probe said so (no arch in the stack), from the master's cache.
    const buildLog = fs.readFileSync(r.buildLogPath, 'utf8');
    expect(buildLog).toContain(`${name}: shipping node ${mirror.version} for linux-x64 with the bundle (the master's probe found no usable node; fetched ${home}/runtimes/`);
    expect(server.requests.filter((q) => q.endsWith('.tar.gz'))).toHaveLength(1);

    const first = await health(h);
    expect(first).toMatchObject({ install_strategy: 'venv', supervisor: 'setsid', node_version: mirror.version.replace(/^v/, ''), commit: bundle.versionInfo.commit });
    const runtime = `/home/d8/.d8-agent/runtime/node-${mirror.version}-linux-x64`;
    const argv0 = rootExec(h, `for p in $(pgrep -u d8 -f 'agent-${h.agentPort}/agent[.]js'); do tr '\\000' '\\n' </proc/$p/cmdline | head -n 1; done | sort -u`);
    expect(argv0.out.trim()).toBe(`${runtime}/bin/node`);
    expect(rootExec(h, 'command -v node || echo none').out.trim()).toBe('none');

    // The pulumi run and its SSH sessions are over; logind keeps a user's manager ~10 s after logout.
    await sleep(15_000);
    const later = await health(h);
    expect(later).toMatchObject({ commit: bundle.versionInfo.commit });
    expect(later!.uptime_s).toBeGreaterThanOrEqual(15);

    // Through d8 again: same probe, same program input, nothing to change.
    const again = await runD8(REPO, ['up', '--stack', 'fresh', '--dir', p.dir, '--engine', 'pulumi', '--json'], env);
    if (again.code !== 0) throw new Error(`second d8 up exited ${again.code}:\n${again.stdout}\n${again.stderr}`);
    expect(JSON.parse(again.stdout)).toMatchObject([{ status: 'up_to_date', strategy: 'venv' }]);
    expect((await health(h))?.uptime_s).toBeGreaterThanOrEqual(15);
  });

  it('a musl host: refused by the probe with the unsupported status before the engine runs; nothing left', async () => {
    const { key } = await fx.setup();
    const h = fx.track(await startContainerHost('fresh', { key, sshPort: await freePort(), agentPort: await freePort() }));
    installShims(h, MUSL_SHIMS);
    const name = 'odd-box';
    const { p, env, server, backend } = await project('odd', h, name);
    const fetchedBefore = server.requests.length; // the mirror is shared with the other test

    const up = await runD8(REPO, ['up', '--stack', 'odd', '--dir', p.dir, '--engine', 'pulumi'], env);
    expect(up.code).toBe(DEPLOY_EXIT_CODES.unsupported);
    expect(up.stdout).toMatch(new RegExp(`^${name}: ${name} \\(d8@127\\.0\\.0\\.1:${h.sshPort}\\): no strategy can work on this host, nothing was installed: ` +
      'docker: docker is not installed; venv: .*C library is musl.*apk add nodejs', 'm'));
    expect(up.stderr).toMatch(new RegExp(`1 of 1 slave\\(s\\) failed \\(${name}: unsupported\\)`));
    expect(server.requests.slice(fetchedBefore)).toEqual([]);
    // The engine never ran: the stack was not even created on the backend.
    const stacks = path.join(backend, '.pulumi', 'stacks');
    expect(fs.existsSync(stacks) ? fs.readdirSync(stacks, { recursive: true }).map(String).filter((f) => f.includes('odd')) : []).toEqual([]);
    await expectUntouched(h);
  });
});
