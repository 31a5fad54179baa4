/** The probe's parser and the pure judge: a recorded probe output from this machine, and variations of it. */
import fs from 'fs';
import path from 'path';
import { judgeHost, judgeRuntime, parseProbeOutput, ProbeOutputError, runtimeArchFor } from '../../master/deploy/probe';
import { supervisionHint } from '../../master/deploy/probe/judge';
import { HostFactsSchema, type HostFacts } from '../../core/host-probe';
import { PINNED_NODE_VERSION, runtimeSource } from '../../core/node-runtime';

/** `sh -c PROBE_SCRIPT` as root on the Debian 12 x86_64 machine these tests were written on. */
const RECORDED = fs.readFileSync(path.join(__dirname, 'fixtures', 'probe-debian12-x64-root.txt'), 'utf8');
const src = runtimeSource({});
const withLines = (lines: Record<string, string>): string =>
  RECORDED.split('\n').map((l) => { const k = l.split('=')[0]; return k in lines ? `${k}=${lines[k]}` : l; }).join('\n');

describe('probe output parser', () => {
  it('reads the recorded output of a real Debian 12 host', () => {
    const f = parseProbeOutput(RECORDED);
    expect(HostFactsSchema.parse(f)).toEqual(f);
    expect(f).toMatchObject({
      user: 'root', uid: 0, home: '/root', kernel: 'Linux', machine: 'x86_64', longBit: 64,
      libc: { kind: 'glibc', version: '2.36' },
      init: { systemdSystem: false, systemdUser: false, linger: 'unknown', sudo: false },
      docker: { path: '/usr/local/bin/docker', serverVersion: '20.10.24+dfsg1', error: null },
      python: { version: '3.11.7', venv: true },
      node: { path: '/usr/bin/node', version: 'v20.20.2', error: null },
      tools: { curl: true, wget: true, tar: true, gzip: true, xz: true, sha256: 'sha256sum' },
    });
  });

  it('an unfinished probe (a non-POSIX login shell) is a clear error', () => {
    expect(() => parseProbeOutput('Unknown command: p\n')).toThrow(ProbeOutputError);
    expect(() => parseProbeOutput('')).toThrow(/did not finish \(got no output\): the login shell must be a POSIX sh-compatible shell/);
  });

  it('a node that does not run, and docker refused to this user', () => {
    const f = parseProbeOutput(withLines({ node_version: 'bash: /usr/bin/node: Permission denied', node_rc: '126', docker_rc: '1', docker_info: 'permission denied while trying to connect to the Docker daemon socket' }));
    expect(f.node).toEqual({ path: '/usr/bin/node', version: null, error: '/usr/bin/node does not run: bash: /usr/bin/node: Permission denied' });
    expect(f.docker).toMatchObject({ serverVersion: null, error: 'permission denied while trying to connect to the Docker daemon socket' });
  });
});

describe('judge', () => {
  const facts = (over: Partial<HostFacts> = {}): HostFacts => ({ ...parseProbeOutput(RECORDED), ...over });
  const noNode = { path: null, version: null, error: null };

  it('a host with node >= 18 uses its own; every strategy will work', () => {
    const v = judgeHost({ facts: facts(), strategies: ['docker', 'venv', 'native'], runtime: src });
    expect(v.runtime).toEqual({ need: 'host', node: '/usr/bin/node', version: 'v20.20.2' });
    expect(v.strategies.map((s) => s.ok)).toEqual([true, true, true]);
    expect(v.summary).toBe('root@x86_64 (x64) Debian GNU/Linux 12 (bookworm), glibc 2.36, 72.7 GiB free; node v20.20.2; docker ok, venv ok, native ok');
  });

  it('node older than the agent needs, or none: push the pinned runtime for the arch', () => {
    expect(judgeRuntime(facts({ node: { path: '/usr/bin/node', version: 'v16.20.2', error: null } }), src))
      .toEqual({ need: 'push', arch: 'x64', why: 'node v16.20.2 is older than the agent needs (>= 18)' });
    expect(judgeRuntime(facts({ node: noNode }), src)).toEqual({ need: 'push', arch: 'x64', why: 'no node on PATH' });
    const v = judgeHost({ facts: facts({ node: noNode }), strategies: ['venv'], runtime: src });
    expect(v.strategies[0].reason).toBe(`will work: pushed node ${PINNED_NODE_VERSION}-x64, python3 3.11.7; supervision: no systemd (cron @reboot or setsid)`);
  });

  it.each([
    [{ machine: 'aarch64', longBit: 64 }, 'arm64'], [{ machine: 'aarch64', longBit: 32 }, 'armv7l'],
    [{ machine: 'armv7l', longBit: 32 }, 'armv7l'], [{ machine: 'armv8l', longBit: 32 }, 'armv7l'], [{ machine: 'x86_64', longBit: 64 }, 'x64'],
  ] as const)('%j runs the %s build', (m, arch) => {
    expect(runtimeArchFor(m)).toEqual({ arch });
  });

  it.each([
    ['glibc 2.27 (Ubuntu 18.04)', { libc: { kind: 'glibc', version: '2.27', evidence: 'x' } }, /glibc 2\.27, older than the 2\.28/],
    ['glibc 2.28 is enough', { libc: { kind: 'glibc', version: '2.28', evidence: 'x' } }, null],
    ['no tar', { tools: { curl: true, wget: true, tar: false, gzip: true, xz: true, sha256: 'sha256sum' } }, /needs tar, which the host lacks: install tar/],
    ['a full disk', { freeKiB: 100 * 1024 }, /\/root has 100 MiB free; the runtime needs 300 MiB/],
    ['x86 32-bit userland', { longBit: 32 }, /32-bit x86 userland on a 64-bit kernel/],
  ] as const)('%s', (_what, over, reason) => {
    const r = judgeRuntime(facts({ node: noNode, ...(over as Partial<HostFacts>) }), src);
    if (reason === null) expect(r.need).toBe('push');
    else expect(r.need === 'refused' && r.reason).toMatch(reason);
  });

  it('a refused runtime fails venv and native with the reason; docker is judged on its own', () => {
    const v = judgeHost({ facts: facts({ node: noNode, libc: { kind: 'musl', version: '1.2.4', evidence: 'ldd --version: musl libc (x86_64) Version 1.2.4' } }), strategies: ['docker', 'venv', 'native'], runtime: src });
    expect(v.strategies[0]).toMatchObject({ strategy: 'docker', ok: true });
    expect(v.strategies.slice(1).every((s) => !s.ok && /musl/.test(s.reason))).toBe(true);
    expect(v.summary).toMatch(/; node: none possible; docker ok, venv no, native no$/);
  });

  it('venv needs ensurepip; the supervision hint follows systemd, sudo and linger', () => {
    const f = facts({ python: { path: '/usr/bin/python3', version: '3.11.2', venv: false }, init: { systemdSystem: true, systemdUser: true, linger: 'no', sudo: true }, uid: 1000 });
    const v = judgeHost({ facts: f, strategies: ['venv', 'native'], runtime: src });
    expect(v.strategies[0]).toEqual({ strategy: 'venv', ok: false, reason: 'python3 3.11.2 cannot make a venv (no venv/ensurepip module; on Debian/Ubuntu: apt-get install python3-venv)' });
    expect(v.strategies[1].reason).toMatch(/; supervision: systemd system unit possible$/);
    expect(supervisionHint({ ...f, init: { systemdSystem: true, systemdUser: true, linger: 'no', sudo: false } })).toBe('supervision: systemd user unit if linger can be enabled');
    expect(supervisionHint({ ...f, init: { systemdSystem: true, systemdUser: true, linger: 'yes', sudo: false } })).toBe('supervision: systemd user unit (linger on)');
  });
});
