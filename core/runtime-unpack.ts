/**
 * The host side of shipping the Node.js runtime, shared by the direct deployer's push and the
 * bootstrap script: check the tarball's sha256 (from SHASUMS256.txt) with whatever the host has,
 * unpack it under the runtime root, and keep the sha256 next to it so the next deploy can reuse it.
 */
import { REMOTE_RUNTIME_ROOT, runtimeName, type RuntimeArch } from './node-runtime';
import { shQuote } from './shell-quote';

/**
 * Runs on the host: $1 tarball, $2 expected sha256, $3 runtime name, $4 runtime root, $5 version.
 * Exit 3: checksum mismatch; 4: cannot unpack; 5: the runtime does not run here.
 */
export const UNPACK_RUNTIME_SCRIPT = String.raw`
set -u
f=$1 want=$2 name=$3 root=$4 version=$5
tmp=$root/.incoming/$name.$$
fail() { rm -rf "$tmp" "$tmp.err" "$f"; printf '%s\n' "$2" >&2; exit "$1"; }
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
if [ -z "$tool" ]; then why="the copy is most likely corrupted: this host has no sha256 tool (sha256sum, shasum, openssl or python3) to check it before unpacking; nothing was installed, deploy again"
else why="disk full? tar and gzip installed?"; fi
mkdir -p "$tmp" && tar -xzf "$f" -C "$tmp" 2>"$tmp.err" || fail 4 "cannot unpack $f: $(tail -n 2 "$tmp.err" 2>/dev/null | tr '\n' ' ')($why)"
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

export interface UnpackArgs { file: string; sha256: string; name: string; root: string; version: string }

/** The script's positional arguments as shell words; a leading "$HOME/" stays expandable. */
export function unpackRuntimeArgs(a: UnpackArgs): string {
  const word = (s: string): string => (s.startsWith('$HOME/') ? `"$HOME"/${shQuote(s.slice(6))}` : shQuote(s));
  return [a.file, a.sha256, a.name, a.root, a.version].map(word).join(' ');
}

/** A runtime tarball as the host sees it: which build, and the sha256 SHASUMS256.txt gives it. */
export interface RuntimeRef {
  sha256: string;
  version: string;
  arch: RuntimeArch;
}

/** Where a runtime is unpacked, relative to the user's home. */
export function runtimeDirOnHost(rt: RuntimeRef): string {
  return `${REMOTE_RUNTIME_ROOT}/${runtimeName(rt.version, rt.arch)}`;
}

/** The runtime's node, relative to the user's home (install.sh --node). */
export function runtimeNodeOnHost(rt: RuntimeRef): string {
  return `${runtimeDirOnHost(rt)}/bin/node`;
}

/** Where a copied tarball waits to be checked and unpacked, relative to the user's home. */
export function incomingTarballOnHost(rt: RuntimeRef): string {
  return `${REMOTE_RUNTIME_ROOT}/.incoming/${runtimeName(rt.version, rt.arch)}.tar.gz`;
}

/** A sh test: the runtime in `dirWord` (a shell word) was unpacked from this sha256 and runs. */
export function runtimePresentTest(dirWord: string, sha256: string): string {
  return `[ "$(cat ${dirWord}/.d8-sha256 2>/dev/null)" = ${shQuote(sha256)} ] && ${dirWord}/bin/node -e 0 >/dev/null 2>&1`;
}

/**
 * sh: keep the runtime when it is already on the host, else run `prepare` (which puts the tarball
 * at incomingTarballOnHost, if it is not copied there already) and check and unpack it.
 */
export function ensureRuntimeCommand(rt: RuntimeRef, prepare?: string): string {
  const name = runtimeName(rt.version, rt.arch);
  const dir = `"$HOME"/${shQuote(runtimeDirOnHost(rt))}`;
  const incoming = incomingTarballOnHost(rt);
  const unpack = `sh -c ${shQuote(UNPACK_RUNTIME_SCRIPT)} d8-runtime ` +
    unpackRuntimeArgs({ file: `$HOME/${incoming}`, sha256: rt.sha256, name, root: `$HOME/${REMOTE_RUNTIME_ROOT}`, version: rt.version });
  return `if ${runtimePresentTest(dir, rt.sha256)}; then echo "[d8] node ${rt.version} (${rt.arch}) is already in ~/${runtimeDirOnHost(rt)}" >&2; ` +
    `rm -f "$HOME"/${shQuote(incoming)}; else ${prepare ? `${prepare} && ` : ''}${unpack} >&2; fi`;
}
