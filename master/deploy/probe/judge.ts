/**
 * The pure half of the probe: from a host's facts, per strategy "will work" or the reason it
 * cannot, and which Node.js runtime the host needs (its own, ours for an arch, or none possible).
 */
import type { HostFacts, HostVerdict, RuntimeVerdict, StrategyVerdict } from '../../../core/host-probe';
import {
  AGENT_MIN_NODE_MAJOR, NODE_GLIBC_FLOOR, nodeMajor, type RuntimeArch, type RuntimeSource,
} from '../../../core/node-runtime';
import type { Strategy } from '../../../core/protocol';

/** Room the unpacked runtime needs in $HOME (node 22 unpacks to ~190 MiB, plus the tarball). */
export const RUNTIME_SPACE_KIB = 300 * 1024;

const NEWER_OS = 'a newer OS (glibc >= 2.28: Debian 10+, Ubuntu 20.04+, RHEL/Rocky 8+, Raspberry Pi OS Buster+)';

export interface JudgeInput {
  facts: HostFacts;
  strategies: readonly Strategy[];
  runtime: RuntimeSource;
}

/** Which official build runs on this kernel + userland, or why none does. */
export function runtimeArchFor(f: Pick<HostFacts, 'machine' | 'longBit'>): { arch: RuntimeArch } | { reason: string } {
  const m = f.machine.toLowerCase();
  const seen = `uname -m ${f.machine}, getconf LONG_BIT ${f.longBit ?? '?'}`;
  if (m === 'x86_64' || m === 'amd64') {
    return f.longBit === 32 ? { reason: `a 32-bit x86 userland on a 64-bit kernel (${seen}): Node.js ships no 32-bit x86 build` } : { arch: 'x64' };
  }
  // A 64-bit ARM kernel under a 32-bit userland (Raspberry Pi OS 32-bit on a Pi 3/4/5) runs armv7l binaries.
  if (m === 'aarch64' || m === 'arm64' || m === 'armv8b') return { arch: f.longBit === 32 ? 'armv7l' : 'arm64' };
  if (m === 'armv7l' || m === 'armv8l' || m.startsWith('armv7')) return { arch: 'armv7l' };
  if (m.startsWith('armv6')) return { reason: `an ARMv6 CPU (${seen}; Raspberry Pi Zero/1): official Node.js builds start at armv7l` };
  if (/^i[3-6]86$/.test(m)) return { reason: `a 32-bit x86 CPU (${seen}): Node.js ships no 32-bit x86 build` };
  return { reason: `an architecture D8 ships no runtime for (${seen}; it ships x64, arm64, armv7l)` };
}

function glibcOk(version: string | null): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version ?? '');
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > NODE_GLIBC_FLOOR.major || (maj === NODE_GLIBC_FLOOR.major && min >= NODE_GLIBC_FLOOR.minor);
}

export function judgeRuntime(f: HostFacts, runtime: RuntimeSource): RuntimeVerdict {
  const major = f.node.version ? nodeMajor(f.node.version) : null;
  if (f.node.path && f.node.version && major !== null && major >= AGENT_MIN_NODE_MAJOR) {
    return { need: 'host', node: f.node.path, version: f.node.version };
  }
  const why = f.node.version ? `node ${f.node.version} is older than the agent needs (>= ${AGENT_MIN_NODE_MAJOR})`
    : f.node.error ?? 'no node on PATH';
  const fix = `install node >= ${AGENT_MIN_NODE_MAJOR} on the host, use the docker strategy, or ${NEWER_OS}`;
  const a = runtimeArchFor(f);
  if ('reason' in a) return { need: 'refused', reason: `${why}, and the Node.js ${runtime.version} runtime cannot run there: ${a.reason}; ${fix}` };
  const floor = `${NODE_GLIBC_FLOOR.major}.${NODE_GLIBC_FLOOR.minor}`;
  if (f.libc.kind === 'musl') {
    return { need: 'refused', reason: `${why}, and the host's C library is musl (${f.libc.evidence}): Node.js publishes no official musl build of ${runtime.version}; ` +
      `install node from the distribution (apk add nodejs), or use the docker strategy` };
  }
  if (f.libc.kind === 'unknown') {
    return { need: 'refused', reason: `${why}, and the host's C library could not be identified (${f.libc.evidence}); Node.js ${runtime.version} needs glibc >= ${floor}: ${fix}` };
  }
  if (!glibcOk(f.libc.version)) {
    return { need: 'refused', reason: `${why}, and the host has glibc ${f.libc.version ?? '?'}, older than the ${floor} that Node.js ${runtime.version} needs: ${fix}` };
  }
  const missing = (['tar', 'gzip'] as const).filter((t) => !f.tools[t]);
  if (missing.length) return { need: 'refused', reason: `${why}, and unpacking the runtime needs ${missing.join(' and ')}, which the host lacks: install ${missing.join(' ')}` };
  if (f.freeKiB !== null && f.freeKiB < RUNTIME_SPACE_KIB) {
    return { need: 'refused', reason: `${why}, and ${f.home} has ${Math.round(f.freeKiB / 1024)} MiB free; the runtime needs ${RUNTIME_SPACE_KIB / 1024} MiB: free some space` };
  }
  return { need: 'push', arch: a.arch, why };
}

/** What can keep the agent running on this host (install.sh decides, in this order). */
export function supervisionHint(f: HostFacts): string {
  if (f.init.systemdSystem && (f.uid === 0 || f.init.sudo)) return 'supervision: systemd system unit possible';
  if (f.init.systemdUser && f.init.linger === 'yes') return 'supervision: systemd user unit (linger on)';
  if (f.init.systemdUser) return 'supervision: systemd user unit if linger can be enabled';
  return 'supervision: no systemd (cron @reboot or setsid)';
}

function nodeNote(r: RuntimeVerdict, version: string): string {
  return r.need === 'host' ? `node ${r.version}` : r.need === 'push' ? `pushed node ${version}-${r.arch}` : 'no node';
}

export function judgeStrategy(s: Strategy, f: HostFacts, r: RuntimeVerdict, version: string): StrategyVerdict {
  if (s === 'docker') {
    if (!f.docker.path) return { strategy: s, ok: false, reason: 'docker is not installed' };
    if (!f.docker.serverVersion) return { strategy: s, ok: false, reason: `docker is not usable by ${f.user}: ${f.docker.error ?? 'docker info failed'} (add ${f.user} to the docker group?)` };
    return { strategy: s, ok: true, reason: `will work: docker engine ${f.docker.serverVersion}` };
  }
  if (r.need === 'refused') return { strategy: s, ok: false, reason: r.reason };
  if (!f.python.path) return { strategy: s, ok: false, reason: 'python3 is not on PATH (install python3)' };
  if (s === 'venv' && !f.python.venv) {
    return { strategy: s, ok: false, reason: `python3 ${f.python.version ?? ''} cannot make a venv (no venv/ensurepip module; on Debian/Ubuntu: apt-get install python3-venv)`.replace('  ', ' ') };
  }
  return { strategy: s, ok: true, reason: `will work: ${nodeNote(r, version)}, python3 ${f.python.version ?? '?'}; ${supervisionHint(f)}` };
}

function archNote(f: HostFacts): string {
  const a = runtimeArchFor(f);
  return `${f.machine}${'arch' in a ? ` (${a.arch})` : ''}`;
}

export function judgeHost(input: JudgeInput): HostVerdict {
  const { facts: f, strategies, runtime } = input;
  const r = judgeRuntime(f, runtime);
  const verdicts = strategies.map((s) => judgeStrategy(s, f, r, runtime.version));
  const libc = f.libc.kind === 'unknown' ? 'libc ?' : `${f.libc.kind} ${f.libc.version ?? '?'}`;
  const free = f.freeKiB === null ? '' : `, ${(f.freeKiB / 1024 / 1024).toFixed(1)} GiB free`;
  const node = r.need === 'host' ? `node ${r.version}` : r.need === 'push' ? `node: push ${runtime.version} ${r.arch}` : 'node: none possible';
  const each = verdicts.map((v) => `${v.strategy} ${v.ok ? 'ok' : 'no'}`).join(', ');
  return {
    runtime: r,
    strategies: verdicts,
    summary: `${f.user}@${archNote(f)} ${f.os ?? f.kernel}, ${libc}${free}; ${node}; ${each}`,
  };
}
