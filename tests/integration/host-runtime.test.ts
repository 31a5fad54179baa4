/**
 * The probe script run for real under PATH shims (uname, getconf, ldd, node) shaped like other
 * machines; the master's runtime cache against a loopback Node.js mirror made from this machine's
 * node; the host-side push (the real unpack script through the local shell) with a corrupted copy.
 */
import { execSync, spawnSync } from 'child_process';
import crypto from 'crypto';
import { shQuote } from '../../core/shell-quote';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { PROBE_SCRIPT, parseProbeOutput, judgeHost } from '../../master/deploy/probe';
import { RuntimeCache, RuntimeChecksumError, RuntimeFetchError } from '../../core/runtime-cache';
import { ensureRemoteRuntime } from '../../master/runtime/push';
import { LocalShell } from '../../master/deploy/direct/shell';
import { ProbeReportSchema, type HostVerdict } from '../../core/host-probe';
import { PINNED_NODE_VERSION } from '../../core/node-runtime';
import { runD8, type Run } from '../support/run-process';
import { corruptedMirrorDir, flipByte, nodeMirrorDir, serveNodeMirror, type NodeMirrorDir, type NodeMirrorServer } from '../support/node-mirror';

jest.setTimeout(180_000);

const REPO = path.join(__dirname, '..', '..');
/** The built CLI (npm test builds dist/ first), run asynchronously so the loopback mirror in this process can answer. */
const d8 = (args: string[], env: NodeJS.ProcessEnv): Promise<Run> => runD8(REPO, args, { ...process.env, ...env });

const tmp = (p: string): string => fs.mkdtempSync(path.join(os.tmpdir(), p));

interface Machine { machine: string; longBit: number; glibc: string | null; musl?: boolean }

/** Shims that make this machine look like `m` to the probe, and hide its node (a wrong-arch binary). */
function shimDir(m: Machine): string {
  const d = tmp('d8-probe-shims-');
  const w = (name: string, body: string): void => fs.writeFileSync(path.join(d, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  w('uname', `case "$1" in -m) echo ${m.machine} ;; -s) echo Linux ;; *) exec /usr/bin/uname "$@" ;; esac`);
  w('getconf', `case "$1" in LONG_BIT) echo ${m.longBit} ;; GNU_LIBC_VERSION) ${m.glibc ? `echo "glibc ${m.glibc}"` : 'echo "getconf: Unrecognized variable \'GNU_LIBC_VERSION\'" >&2; exit 1'} ;; *) exec /usr/bin/getconf "$@" ;; esac`);
  if (m.musl) w('ldd', 'echo "musl libc (x86_64)" >&2; echo "Version 1.2.4" >&2; echo "Dynamic Program Loader" >&2; exit 1');
  w('node', 'echo "node: cannot execute binary file: Exec format error" >&2; exit 126');
  return d;
}

function probeAs(m: Machine): HostVerdict {
  const dir = shimDir(m);
  try {
    const r = spawnSync('sh', ['-c', PROBE_SCRIPT], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
    const facts = parseProbeOutput(r.stdout);
    return judgeHost({ facts, strategies: ['docker', 'venv', 'native'], runtime: { version: PINNED_NODE_VERSION, distUrl: 'https://nodejs.org/dist' } });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('the real probe script under PATH shims: which runtime a machine gets', () => {
  it.each([
    ['Raspberry Pi OS 64-bit (aarch64, 64-bit userland)', { machine: 'aarch64', longBit: 64, glibc: '2.36' }, 'arm64'],
    ['Raspberry Pi OS 32-bit on a 64-bit kernel (aarch64, 32-bit userland)', { machine: 'aarch64', longBit: 32, glibc: '2.36' }, 'armv7l'],
    ['Raspberry Pi 2 / armv7l', { machine: 'armv7l', longBit: 32, glibc: '2.31' }, 'armv7l'],
    ['a PC (x86_64)', { machine: 'x86_64', longBit: 64, glibc: '2.28' }, 'x64'],
  ] as const)('%s → %s', (_what, m, arch) => {
    const v = probeAs(m);
    expect(v.runtime).toMatchObject({ need: 'push', arch });
    expect(v.runtime.need === 'push' && v.runtime.why).toMatch(/node: cannot execute binary file: Exec format error/);
    expect(v.strategies.find((s) => s.strategy === 'venv')?.reason).toMatch(new RegExp(`pushed node ${PINNED_NODE_VERSION}-${arch}`));
  });

  it.each([
    ['Alpine (musl)', { machine: 'x86_64', longBit: 64, glibc: null, musl: true }, /C library is musl \(ldd --version: musl libc \(x86_64\) Version 1\.2\.4.*no official musl build.*apk add nodejs.*docker strategy/],
    ['CentOS 7 (glibc 2.17)', { machine: 'x86_64', longBit: 64, glibc: '2.17' }, /glibc 2\.17, older than the 2\.28 .*newer OS/],
    ['Raspberry Pi Zero (armv6l)', { machine: 'armv6l', longBit: 32, glibc: '2.31' }, /ARMv6 CPU \(uname -m armv6l.*start at armv7l/],
    ['RISC-V board (riscv64)', { machine: 'riscv64', longBit: 64, glibc: '2.36' }, /architecture D8 ships no runtime for \(uname -m riscv64, getconf LONG_BIT 64; it ships x64, arm64, armv7l\)/],
  ] as const)('%s: refused, saying what was found and what to do', (_what, m, reason) => {
    const v = probeAs(m);
    expect(v.runtime.need).toBe('refused');
    expect(v.runtime.need === 'refused' && v.runtime.reason).toMatch(reason);
    for (const s of v.strategies.filter((x) => x.strategy !== 'docker')) expect(s).toMatchObject({ ok: false, reason: expect.stringMatching(reason) });
  });
});

describe('runtime cache and push against a loopback mirror of this machine\'s node', () => {
  let mirror: NodeMirrorDir;
  let server: NodeMirrorServer;
  let bad: NodeMirrorServer;
  let work: string;

  beforeAll(async () => {
    mirror = nodeMirrorDir();
    server = await serveNodeMirror(mirror.root);
    work = tmp('d8-runtime-it-');
    bad = await serveNodeMirror(corruptedMirrorDir(mirror, path.join(work, 'bad-mirror')).root);
  });
  afterAll(async () => {
    await server?.close();
    await bad?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const src = (url: string) => ({ version: mirror.version, distUrl: url });

  it('fetches once, checks SHASUMS256.txt, then serves from the cache without downloading again', async () => {
    const env = { D8_HOME: path.join(work, 'home-ok') };
    const cache = new RuntimeCache({ env });
    const [a, b] = await Promise.all([cache.ensure(src(server.url), 'x64'), cache.ensure(src(server.url), 'x64')]);
    expect(a).toBe(b);
    expect(a).toMatchObject({ fetched: true, sha256: mirror.sha256, bytes: mirror.bytes, arch: 'x64', version: mirror.version });
    expect(a.file).toBe(path.join(env.D8_HOME, 'runtimes', mirror.version, `node-${mirror.version}-linux-x64.tar.gz`));
    const tarballGets = () => server.requests.filter((r) => r.endsWith('.tar.gz')).length;
    expect(tarballGets()).toBe(1);
    const again = await new RuntimeCache({ env }).ensure(src(server.url), 'x64');
    expect(again.fetched).toBe(false);
    expect(tarballGets()).toBe(1);
  });

  it('a corrupted byte from the mirror fails the checksum, says so, and caches nothing', async () => {
    const env = { D8_HOME: path.join(work, 'home-bad') };
    const err = await new RuntimeCache({ env }).ensure(src(bad.url), 'x64').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RuntimeChecksumError);
    expect((err as Error).message).toMatch(new RegExp(`checksum mismatch for node-${mirror.version}-linux-x64.tar.gz .*SHASUMS256.txt says sha256 ${mirror.sha256}, the download is [0-9a-f]{64}`));
    expect(fs.readdirSync(path.join(env.D8_HOME, 'runtimes', mirror.version))).toEqual(['SHASUMS256.txt']);
  });

  it('a cached tarball corrupted on the master\'s disk is fetched again', async () => {
    const env = { D8_HOME: path.join(work, 'home-rot') };
    const first = await new RuntimeCache({ env }).ensure(src(server.url), 'x64');
    flipByte(first.file, 1000);
    const notes: string[] = [];
    const second = await new RuntimeCache({ env, onProgress: (m) => notes.push(m) }).ensure(src(server.url), 'x64');
    expect(second).toMatchObject({ fetched: true, sha256: mirror.sha256 });
    expect(notes.join('\n')).toMatch(/does not match SHASUMS256\.txt .*fetching it again/);
  });

  it('an arch the release does not list, and an unreachable mirror, are clear errors', async () => {
    const env = { D8_HOME: path.join(work, 'home-err') };
    await expect(new RuntimeCache({ env }).ensure(src(server.url), 'arm64')).rejects.toThrow(/lists no node-v[\d.]+-linux-arm64\.tar\.gz: that release has no linux-arm64 build on this mirror/);
    await expect(new RuntimeCache({ env: { D8_HOME: path.join(work, 'home-off') } }).ensure(src('http://127.0.0.1:1'), 'x64'))
      .rejects.toThrow(RuntimeFetchError);
  });

  it('host side: pushed once, checked, unpacked, runs; present on the next deploy; a corrupted copy is refused there', async () => {
    const home = path.join(work, 'slave-home');
    fs.mkdirSync(home);
    const rt = await new RuntimeCache({ env: { D8_HOME: path.join(work, 'home-push') } }).ensure(src(server.url), 'x64');
    const shell = new LocalShell();
    const steps: string[] = [];
    const first = await ensureRemoteRuntime({ shell, home, runtime: rt, record: (s) => steps.push(`${s.code} ${s.stdout}`) });
    expect(first.pushed).toBe(true);
    expect(first.nodePath).toBe(path.join(home, '.d8-agent', 'runtime', `node-${mirror.version}-linux-x64`, 'bin', 'node'));
    expect(spawnSync(first.nodePath, ['--version'], { encoding: 'utf8' }).stdout.trim()).toBe(mirror.version);
    expect(steps.join('\n')).toMatch(new RegExp(`installed node-${mirror.version}-linux-x64 \\(${mirror.version}\\), sha256 ${mirror.sha256} checked with sha256sum`));
    expect(fs.readdirSync(path.join(home, '.d8-agent', 'runtime', '.incoming'))).toEqual([]);

    const second = await ensureRemoteRuntime({ shell, home, runtime: rt });
    expect(second).toMatchObject({ pushed: false, nodePath: first.nodePath });

    // The copy arriving on the host is corrupted: the host's own check refuses it.
    const badHome = path.join(work, 'slave-home-bad');
    fs.mkdirSync(badHome);
    const badFile = path.join(work, 'bad.tar.gz');
    fs.copyFileSync(rt.file, badFile);
    flipByte(badFile, Math.floor(rt.bytes / 3));
    const err = await ensureRemoteRuntime({ shell, home: badHome, runtime: { ...rt, file: badFile } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RuntimeChecksumError);
    expect((err as Error).message).toMatch(new RegExp(`checksum mismatch for .*node-${mirror.version}-linux-x64\\.tar\\.gz on .*: expected sha256 ${rt.sha256} \\(SHASUMS256.txt\\), got [0-9a-f]{64} \\(sha256sum\\)`));
    const left = fs.readdirSync(path.join(badHome, '.d8-agent', 'runtime'));
    expect(left).toEqual(['.incoming']);
    expect(fs.readdirSync(path.join(badHome, '.d8-agent', 'runtime', '.incoming'))).toEqual([]);
  });

  const badMirror = { get url(): string { return bad.url; } };

  it('d8 runtime fetch fills the cache once and says so; --json for scripts; a bad --arch exits 2', async () => {
    const env = { D8_HOME: path.join(work, 'home-cli') };
    const args = ['runtime', 'fetch', '--dist-url', server.url, '--node-version', mirror.version, '--arch', 'x64'];
    const first = await d8(args, env);
    expect(first.stderr).toMatch(new RegExp(`fetched .*node-${mirror.version}-linux-x64\\.tar\\.gz .*matches SHASUMS256\\.txt`));
    expect(first.code).toBe(0);
    const again = await d8([...args, '--json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ version: mirror.version, distUrl: server.url, runtimes: [{ arch: 'x64', fetched: false, sha256: mirror.sha256 }] });
    const wrong = await d8(['runtime', 'fetch', '--arch', 'sparc'], env);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/--arch sparc: not a shipped arch \(use x64, arm64, armv7l\)/);
    const corrupt = await d8(['runtime', 'fetch', '--dist-url', badMirror.url, '--node-version', mirror.version, '--arch', 'x64'], { D8_HOME: path.join(work, 'home-cli-bad') });
    expect(corrupt.code).toBe(1);
    expect(corrupt.stderr).toMatch(/^d8: checksum mismatch for node-v[\d.]+-linux-x64\.tar\.gz/m);
  });
});

describe('d8 probe on this machine (the dev stack\'s host: local)', () => {
  it('prints the facts and a verdict per strategy; --json is the ProbeReport contract', async () => {
    const env = { D8_HOME: tmp('d8-probe-cli-') };
    const human = await d8(['probe', 'local'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^local \(local\)\n/);
    expect(human.stdout).toMatch(/^ {2}arch +x86_64, 64-bit userland → runtime x64$/m);
    expect(human.stdout).toMatch(/^ {2}venv +(will work: |cannot: )/m);
    const json = await d8(['probe', 'local', '--json'], env);
    expect(json.code).toBe(0);
    const report = ProbeReportSchema.parse(JSON.parse(json.stdout));
    expect(report).toMatchObject({ slave: 'local', where: 'local', facts: { machine: os.arch() === 'x64' ? 'x86_64' : expect.any(String), home: os.homedir() } });
    // The same one-line summary (free space may move between the two runs).
    const tail = report.verdict.summary.replace(/^.*GiB free; /, '');
    expect(human.stdout.trimEnd().split('\n').pop()).toMatch(new RegExp(`^${os.userInfo().username}@.* GiB free; ${tail.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    const missing = await d8(['probe', 'nope'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/stack dev has no slave named "nope" \(it has: local\)/);
  });
});

describe('host side without any sha256 tool (no sha256sum, shasum, openssl or python3 on PATH)', () => {
  let mirror: NodeMirrorDir;
  let work: string;
  let bin: string;
  beforeAll(() => {
    mirror = nodeMirrorDir();
    work = tmp('d8-runtime-nosum-');
    // The host's PATH: the tools the push and the unpack script use, and none that hashes.
    bin = path.join(work, 'bin');
    fs.mkdirSync(bin);
    for (const t of ['sh', 'mkdir', 'chmod', 'rm', 'cat', 'tar', 'gzip', 'cut', 'sed', 'tail', 'head', 'tr', 'mv', 'uname', 'dirname', 'ls']) {
      const real = spawnSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).stdout.trim();
      fs.symlinkSync(real, path.join(bin, t));
    }
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  /** The local shell with the host's PATH restricted: the push's and the unpack script's own commands run under it. */
  const bareShell = (): LocalShell => {
    const inner = new LocalShell();
    const shell = Object.create(inner) as LocalShell;
    shell.exec = (cmd, o) => inner.exec(`PATH=${bin}; export PATH; ${cmd}`, o);
    return shell;
  };
  const cached = (file: string, sha256: string) => ({ file, sha256, version: mirror.version, arch: 'x64' as const, bytes: fs.statSync(file).size, fetched: false });

  it('the PATH really has no hashing tool', () => {
    const r = spawnSync('sh', ['-c', 'for t in sha256sum shasum openssl python3; do command -v $t; done; true'], { encoding: 'utf8', env: { PATH: bin } });
    expect(r.stdout.trim()).toBe('');
  });

  it('a good copy: the runtime checks its own tarball before anything uses it, and says so', async () => {
    const home = path.join(work, 'good');
    fs.mkdirSync(home);
    const steps: string[] = [];
    const r = await ensureRemoteRuntime({ shell: bareShell(), home, runtime: cached(mirror.tarball, mirror.sha256), record: (s) => steps.push(`${s.stdout}${s.stderr}`) });
    expect(r.pushed).toBe(true);
    expect(spawnSync(r.nodePath, ['--version'], { encoding: 'utf8' }).stdout.trim()).toBe(mirror.version);
    expect(steps.join('\n')).toContain(`installed node-${mirror.version}-linux-x64 (${mirror.version}), sha256 ${mirror.sha256} checked with node-${mirror.version}-linux-x64/bin/node`);
  });

  it('a valid tarball that is not the published one (another sha256): refused by that self-check, nothing installed', async () => {
    const home = path.join(work, 'other');
    fs.mkdirSync(home);
    // Same content, recompressed: it unpacks and runs, but its sha256 is not SHASUMS256.txt's.
    const other = path.join(work, 'other.tar.gz');
    execSync(`gzip -dc ${shQuote(mirror.tarball)} | gzip -9 >${shQuote(other)}`);
    expect(crypto.createHash('sha256').update(fs.readFileSync(other)).digest('hex')).not.toBe(mirror.sha256);
    const err = await ensureRemoteRuntime({ shell: bareShell(), home, runtime: cached(other, mirror.sha256) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RuntimeChecksumError);
    expect((err as Error).message).toMatch(new RegExp(`checksum mismatch .*expected sha256 ${mirror.sha256} \\(SHASUMS256.txt\\), got [0-9a-f]{64} \\(node-${mirror.version}-linux-x64/bin/node\\)`));
    expect(fs.readdirSync(path.join(home, '.d8-agent', 'runtime'))).toEqual(['.incoming']);
    expect(fs.readdirSync(path.join(home, '.d8-agent', 'runtime', '.incoming'))).toEqual([]);
  });

  it('a corrupted copy: it cannot be unpacked, and the error says why and that nothing was installed', async () => {
    const home = path.join(work, 'bad');
    fs.mkdirSync(home);
    const bad = path.join(work, 'bad.tar.gz');
    fs.copyFileSync(mirror.tarball, bad);
    flipByte(bad, Math.floor(mirror.bytes / 3));
    const err = await ensureRemoteRuntime({ shell: bareShell(), home, runtime: cached(bad, mirror.sha256) }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/cannot unpack .*\(the copy is most likely corrupted: this host has no sha256 tool \(sha256sum, shasum, openssl or python3\) to check it before unpacking; nothing was installed, deploy again\)$/);
    expect(fs.readdirSync(path.join(home, '.d8-agent', 'runtime'))).toEqual(['.incoming']);
    expect(fs.readdirSync(path.join(home, '.d8-agent', 'runtime', '.incoming'))).toEqual([]);
  });
});
