/** Reads the probe's `key=value` lines (script.ts) into HostFacts. */
import { HostFactsSchema, type HostFacts } from '../../../core/host-probe';

export class ProbeOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProbeOutputError';
  }
}

function lines(stdout: string): Record<string, string> {
  const kv: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return kv;
}

const orNull = (s: string | undefined): string | null => (s && s.trim() !== '' ? s.trim() : null);
const int = (s: string | undefined): number | null => (s && /^\d+$/.test(s.trim()) ? Number(s.trim()) : null);

function libcOf(kv: Record<string, string>): HostFacts['libc'] {
  const glibc = /^glibc\s+(\d+\.\d+)/i.exec(kv.glibc ?? '');
  if (glibc) return { kind: 'glibc', version: glibc[1], evidence: `getconf GNU_LIBC_VERSION: ${kv.glibc}` };
  const ldd = kv.ldd ?? '';
  if (/musl/i.test(ldd)) {
    const v = /Version\s+(\d+(?:\.\d+)+)/i.exec(ldd);
    return { kind: 'musl', version: v ? v[1] : null, evidence: `ldd --version: ${ldd.trim()}` };
  }
  const g = /(?:GLIBC|GNU libc)[^\d]*(\d+\.\d+)/i.exec(ldd);
  if (g) return { kind: 'glibc', version: g[1], evidence: `ldd --version: ${ldd.trim()}` };
  return { kind: 'unknown', version: null, evidence: `getconf GNU_LIBC_VERSION: ${kv.glibc || '(nothing)'}; ldd --version: ${ldd.trim() || '(nothing)'}` };
}

function sha256Tool(kv: Record<string, string>): HostFacts['tools']['sha256'] {
  if (kv.tool_sha256sum) return 'sha256sum';
  if (kv.tool_shasum) return 'shasum';
  if (kv.tool_openssl) return 'openssl';
  if (kv.python3) return 'python3';
  return 'none';
}

export function parseProbeOutput(stdout: string): HostFacts {
  const kv = lines(stdout);
  if (kv.probe_done !== '1') {
    throw new ProbeOutputError(`the probe did not finish (got ${stdout.trim() ? `"${stdout.trim().split('\n').pop()!.slice(0, 120)}"` : 'no output'}): ` +
      'the login shell must be a POSIX sh-compatible shell');
  }
  if (!kv.home?.startsWith('/')) throw new ProbeOutputError(`the probe found no home directory (HOME="${kv.home ?? ''}")`);
  const nodeRuns = kv.node && kv.node_rc === '0' && /^v\d+\.\d+\.\d+/.test(kv.node_version ?? '');
  const dockerOk = kv.docker && kv.docker_rc === '0' && /^\d/.test(kv.docker_info ?? '');
  const linger = kv.linger === 'yes' || kv.linger === 'no' ? kv.linger : 'unknown';
  return HostFactsSchema.parse({
    user: kv.user ?? '?',
    uid: int(kv.uid),
    home: kv.home,
    os: orNull(kv.os),
    kernel: kv.kernel || '?',
    machine: kv.machine || '?',
    longBit: int(kv.long_bit),
    libc: libcOf(kv),
    freeKiB: int(kv.free_kib),
    init: { systemdSystem: kv.systemd_system === 'yes', systemdUser: kv.systemd_user === 'yes', linger, sudo: kv.sudo === 'yes' },
    docker: {
      path: orNull(kv.docker),
      serverVersion: dockerOk ? kv.docker_info : null,
      error: kv.docker && !dockerOk ? (orNull(kv.docker_info) ?? `docker info exited ${kv.docker_rc ?? '?'}`) : null,
    },
    python: { path: orNull(kv.python3), version: kv.python3 ? orNull(kv.python_version) : null, venv: kv.python_venv === 'yes' },
    node: {
      path: orNull(kv.node) ?? orNull(kv.node_shadow),
      version: nodeRuns ? kv.node_version : null,
      error: kv.node && !nodeRuns ? `${kv.node} does not run: ${kv.node_version || `exit ${kv.node_rc ?? '?'}`}`
        : kv.node_shadow ? `${kv.node_shadow} exists but is not executable` : null,
    },
    tools: {
      curl: !!kv.tool_curl, wget: !!kv.tool_wget, tar: !!kv.tool_tar, gzip: !!kv.tool_gzip, xz: !!kv.tool_xz,
      sha256: sha256Tool(kv),
    },
  });
}
