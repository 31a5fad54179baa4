/**
 * Puts a cached Node.js runtime on a host: over the deploy's shell (SFTP for the tarball), checked
 * again on the host against the sha256 from SHASUMS256.txt, unpacked under
 * ~/.d8-agent/runtime/node-vX-linux-ARCH/. A runtime already there (same sha256, runs, reports the
 * version) is reused: it is kept across redeploys and never pushed twice.
 */
import { REMOTE_RUNTIME_ROOT, runtimeName } from '../../core/node-runtime';
import { shQuote } from '../../core/sh-quote';
import type { SlaveShell } from '../deploy/direct/shell';
import { RuntimeChecksumError, type CachedRuntime } from './cache';

export class RuntimePushError extends Error {
  constructor(message: string, readonly exitCode: number | null) {
    super(message);
    this.name = 'RuntimePushError';
  }
}

/** A command line the push ran, for the build log. */
export interface PushStep {
  command: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RemoteRuntime {
  /** Absolute path of `node` on the host. */
  nodePath: string;
  pushed: boolean;
  bytes: number;
  /** Upload + check + unpack, ms (0 when already there). */
  ms: number;
}

/**
 * Runs on the host: $1 tarball, $2 expected sha256, $3 runtime name, $4 runtime root, $5 version.
 * Exit 3: checksum mismatch; 4: cannot unpack; 5: the runtime does not run here.
 */
const UNPACK = String.raw`
set -u
f=$1 want=$2 name=$3 root=$4 version=$5
tmp=$root/.incoming/$name.$$
fail() { rm -rf "$tmp" "$f"; printf '%s\n' "$2" >&2; exit "$1"; }
pick() { for t in sha256sum shasum openssl python3; do command -v "$t" >/dev/null 2>&1 && { tool=$t; return 0; }; done; tool=; }
sum() {
  case "$tool" in
    sha256sum) sha256sum "$1" | cut -d' ' -f1 ;;
    shasum) shasum -a 256 "$1" | cut -d' ' -f1 ;;
    openssl) openssl dgst -sha256 "$1" | sed 's/.*= *//' ;;
    python3) python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1" ;;
    *) return 1 ;;
  esac
}
mismatch() { fail 3 "checksum mismatch for $f on $(uname -n): expected sha256 $want (SHASUMS256.txt), got $1 ($tool): the copy was corrupted on the way; nothing was installed, deploy again"; }
pick
got=$(sum "$f") || got=
[ -z "$got" ] || [ "$got" = "$want" ] || mismatch "$got"
mkdir -p "$tmp" && tar -xzf "$f" -C "$tmp" 2>"$tmp.err" || fail 4 "cannot unpack $f: $(tail -n 2 "$tmp.err" 2>/dev/null) (disk full? tar and gzip installed?)"
rm -f "$tmp.err"
[ -f "$tmp/$name/bin/node" ] || fail 4 "$f has no $name/bin/node: not an official Node.js tarball"
if [ -z "$got" ]; then
  # No sha256 tool on the host: the runtime checks its own tarball before it is used for anything else.
  tool="$name/bin/node"
  got=$("$tmp/$name/bin/node" -e 'const h=require("crypto").createHash("sha256");h.update(require("fs").readFileSync(process.argv[1]));process.stdout.write(h.digest("hex"))' "$f" 2>&1) ||
    fail 5 "the runtime does not run on this host: $got"
  [ "$got" = "$want" ] || mismatch "$got"
fi
v=$("$tmp/$name/bin/node" -e 'process.stdout.write(process.version)' 2>&1) || fail 5 "$name does not run on this host: $v"
[ "$v" = "$version" ] || fail 5 "$name reports $v, not $version"
rm -rf "$root/$name" && mv "$tmp/$name" "$root/$name" && printf '%s\n' "$want" >"$root/$name/.d8-sha256" || fail 4 "cannot move the runtime into $root/$name"
rm -rf "$tmp" "$f"
echo "installed $name ($v), sha256 $got checked with $tool"
`;

export interface PushOptions {
  shell: SlaveShell;
  /** The user's home on the host (from the probe). */
  home: string;
  runtime: CachedRuntime;
  /** Every command run, for the build log. */
  record?: (step: PushStep) => void;
  onProgress?: (message: string) => void;
}

export function remoteRuntimeDir(home: string, version: string, arch: CachedRuntime['arch']): string {
  return `${home}/${REMOTE_RUNTIME_ROOT}/${runtimeName(version, arch)}`;
}

/** Whether the runtime is already on the host, verified by the sha256 it was installed from. */
export function presentCommand(dir: string, sha256: string, version: string): string {
  return `d=${shQuote(dir)}; [ -x "$d/bin/node" ] && [ "$(cat "$d/.d8-sha256" 2>/dev/null)" = ${shQuote(sha256)} ] && ` +
    `[ "$("$d/bin/node" -e 'process.stdout.write(process.version)' 2>/dev/null)" = ${shQuote(version)} ] && echo present`;
}

export async function ensureRemoteRuntime(o: PushOptions): Promise<RemoteRuntime> {
  const { shell, runtime: rt } = o;
  const name = runtimeName(rt.version, rt.arch);
  const root = `${o.home}/${REMOTE_RUNTIME_ROOT}`;
  const dir = `${root}/${name}`;
  const nodePath = `${dir}/bin/node`;
  const step = async (command: string, timeoutMs: number, label = command) => {
    const r = await shell.exec(command, { timeoutMs });
    o.record?.({ command: label, code: r.code, stdout: r.stdout, stderr: r.stderr });
    return r;
  };

  const have = await step(presentCommand(dir, rt.sha256, rt.version), 30000);
  if (have.stdout.trim() === 'present') {
    o.onProgress?.(`node ${rt.version} (${rt.arch}) already on the host in ${dir}`);
    return { nodePath, pushed: false, bytes: 0, ms: 0 };
  }

  const started = Date.now();
  const incoming = `${root}/.incoming`;
  const mk = await step(`mkdir -p ${shQuote(incoming)} && chmod 700 ${shQuote(`${o.home}/.d8-agent`)} && rm -rf ${shQuote(incoming)}/*`, 30000);
  if (mk.code !== 0) throw new RuntimePushError(`cannot create ${incoming}: ${mk.stderr.trim()}`, mk.code);
  const remoteFile = `${incoming}/${name}.tar.gz`;
  o.onProgress?.(`pushing node ${rt.version} for ${rt.arch} (${(rt.bytes / 1048576).toFixed(1)} MiB) to ${dir}`);
  await shell.upload([{ local: rt.file, remote: remoteFile }]);
  const args = [remoteFile, rt.sha256, name, root, rt.version].map(shQuote).join(' ');
  const r = await step(`sh -c ${shQuote(UNPACK)} d8-runtime ${args}`, 10 * 60 * 1000,
    `check sha256 ${rt.sha256} and unpack ${remoteFile} into ${dir} (${Date.now() - started} ms after the upload started)`);
  if (r.code !== 0) {
    const msg = r.stderr.trim().split('\n').pop() || `exit ${r.code}`;
    if (r.code === 3) throw new RuntimeChecksumError(msg);
    throw new RuntimePushError(`cannot install the runtime in ${dir}: ${msg}`, r.code);
  }
  return { nodePath, pushed: true, bytes: rt.bytes, ms: Date.now() - started };
}
