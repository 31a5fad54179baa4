/**
 * (f) A host whose probe reports what the shipped runtime cannot run on: a fresh-VPS container (no
 * node, no docker) with root-installed PATH shims in /usr/local/bin (first on sshd's PATH) for
 * `uname`, `getconf` and `ldd`, shaped like an Alpine box (musl) or a RISC-V board. The real
 * `d8 up --engine direct` refuses before writing anything: the error names the host, what the probe
 * found and what to do; the exit status is the `unsupported` one of cli/exit-codes.ts; no runtime is
 * fetched; nothing is left on the host (no ~/.d8-agent, no process of the user).
 */
import fs from 'fs';
import path from 'path';
import { DEPLOY_EXIT_CODES } from '../../cli/exit-codes';
import { ProbeReportSchema } from '../../core/host-probe';
import { runD8 } from '../support/run-process';
import { describeTier } from '../support/tier';
import { freePort, randomToken, REPO } from '../system/support/hosts';
import { hostsTier, startContainerHost } from './support/tier';
import { HostsFixture } from './support/fixture';
import { expectUntouched } from './support/agent';
import { installShims, MUSL_SHIMS } from './support/shims';

jest.setTimeout(4 * 60 * 1000);

interface Case {
  what: string;
  /** Shim bodies by command name (POSIX sh; the real tools are in /usr/bin). */
  shims: Record<string, string>;
  found: RegExp;
  fix: RegExp;
}

const CASES: Case[] = [
  {
    what: 'musl (an Alpine-like userland)',
    shims: MUSL_SHIMS,
    found: /C library is musl \(ldd --version: musl libc \(x86_64\) Version 1\.2\.4/,
    fix: /install node from the distribution \(apk add nodejs\), or use the docker strategy/,
  },
  {
    what: 'riscv64 (an architecture with no shipped runtime)',
    shims: { uname: 'case "$1" in -m) echo riscv64 ;; *) exec /usr/bin/uname "$@" ;; esac' },
    found: /architecture D8 ships no runtime for \(uname -m riscv64, getconf LONG_BIT 64; it ships x64, arm64, armv7l\)/,
    fix: /install node >= \d+ on the host, use the docker strategy, or a newer OS/,
  },
];

describeTier(hostsTier, 'a host the runtime cannot run on is refused, nothing left behind', () => {
  const token = randomToken();
  const fx = new HostsFixture('d8h-unsup-');
  afterAll(() => fx.cleanup());

  it.concurrent.each(CASES)('$what: d8 probe says why, d8 up refuses with the unsupported status', async ({ shims, found, fix }) => {
    const { dir, key, server } = await fx.setup();
    const h = fx.track(await startContainerHost('fresh', { key, sshPort: await freePort(), agentPort: await freePort() }));
    installShims(h, shims);
    const name = `odd-${h.agentPort}`;
    const stackDir = path.join(dir, name);
    fs.mkdirSync(stackDir);
    fs.writeFileSync(path.join(stackDir, 'Pulumi.hosts.yaml'), `config:
  d8:sshKeyPath: ${key}
  d8:nodeDistUrl: ${server.url}
  d8:slaves:
    - { name: ${name}, host: ${h.host}, user: ${h.user}, sshPort: ${h.sshPort}, agentPort: ${h.agentPort} }
`);
    const env = { ...process.env, D8_HOME: path.join(stackDir, 'home'), D8_AGENT_TOKEN: token, D8_SSH_KEY_PATH: '', D8_SSH_PRIVATE_KEY: '' };
    const args = ['--stack', 'hosts', '--dir', stackDir];

    const probe = await runD8(REPO, ['probe', name, ...args, '--json'], env);
    const report = ProbeReportSchema.parse(JSON.parse(probe.stdout));
    expect(report.verdict.runtime.need).toBe('refused');
    expect(report.verdict.strategies.every((s) => !s.ok)).toBe(true);
    expect(probe.code).toBe(1);

    const up = await runD8(REPO, ['up', '--slave', name, ...args, '--engine', 'direct'], env);
    const out = `${up.stdout}\n${up.stderr}`;
    expect(up.code).toBe(DEPLOY_EXIT_CODES.unsupported);
    const error = new RegExp(`^${name}: ${name} \\(d8@127\\.0\\.0\\.1:${h.sshPort}\\): no strategy can work on this host, nothing was installed: .*$`, 'm').exec(up.stdout)?.[0];
    expect(error).toBeDefined();
    expect(error).toMatch(/docker: docker is not installed/);
    expect(error).toMatch(found);
    expect(error).toMatch(fix);
    expect(up.stderr).toMatch(new RegExp(`1 of 1 slave\\(s\\) failed \\(${name}: unsupported\\)`));
    expect(out).not.toContain(token);

    expect(server.requests).toEqual([]);
    await expectUntouched(h);
  });
});
