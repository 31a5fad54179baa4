/**
 * A self-contained install script for a slave the master cannot SSH into (`d8 bootstrap-script`):
 * one POSIX sh file with the bundle embedded (tar.gz, base64), the agent token and the master's
 * address filled in. Run on the slave, it unpacks the bundle where a direct deploy would have put it
 * and runs the same install.sh command line (agent/install/command.ts), token on stdin.
 * With a runtime (`--arch`), the Node.js tarball is embedded too, with its sha256 from
 * SHASUMS256.txt, and checked and unpacked on the host before the install (core/runtime-unpack.ts).
 */
import { execFileSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { installCommand, remoteBundleDir } from '../install/command';
import type { SlaveConfig } from '../../core/stack-config';
import type { BundleInfo } from './build';
import type { RuntimeArch } from '../../core/node-runtime';
import { ensureRuntimeCommand, incomingTarballOnHost, runtimeNodeOnHost } from '../../core/runtime-unpack';
import { shQuote as q } from '../../core/shell-quote';

/** A Node.js tarball from the master's cache, already checked against SHASUMS256.txt. */
export interface EmbeddedRuntime {
  file: string;
  sha256: string;
  version: string;
  arch: RuntimeArch;
}

export interface BootstrapScriptOptions {
  bundle: BundleInfo;
  slave: SlaveConfig;
  stack: string;
  token: string;
  /** Where the master is, printed for the operator (e.g. `raspberrypi.lan`). */
  master: string;
  attempts: number;
  delaySeconds: number;
  baseImage?: string;
  runtime?: EmbeddedRuntime;
}

const MARKER = '__D8_BUNDLE_BELOW__';
const RUNTIME_MARKER = '__D8_RUNTIME_BELOW__';

function runtimePart(rt: EmbeddedRuntime): { prelude: string; payload: string; nodePath: string } {
  const b64 = fs.readFileSync(rt.file).toString('base64').replace(/.{76}/g, '$&\n');
  const incoming = `"$HOME"/${q(incomingTarballOnHost(rt))}`;
  const extract = `{ mkdir -p "$(dirname ${incoming})" && sed '1,/^${RUNTIME_MARKER}$/d' "$0" | base64 -d >${incoming}; }`;
  const prelude = `# The Node.js runtime ${rt.version} for linux-${rt.arch}, checked against sha256 ${rt.sha256} before use.
${ensureRuntimeCommand(rt, extract)} ||
  { echo "d8 bootstrap: the embedded Node.js runtime was not installed (see above)" >&2; exit 1; }
`;
  return { prelude, payload: `${RUNTIME_MARKER}\n${b64}\n`, nodePath: runtimeNodeOnHost(rt) };
}

export function bootstrapScript(o: BootstrapScriptOptions): string {
  const tgz = execFileSync('tar', ['czf', '-', '-C', o.bundle.dir, ...o.bundle.files], { maxBuffer: 256 * 1024 * 1024 });
  const b64 = tgz.toString('base64').replace(/.{76}/g, '$&\n');
  const dir = remoteBundleDir(o.bundle.hash);
  const rt = o.runtime ? runtimePart(o.runtime) : null;
  const cmd = installCommand({
    bundleDir: dir,
    strategies: o.slave.strategies,
    attempts: o.attempts,
    delaySeconds: o.delaySeconds,
    agentPort: o.slave.agentPort,
    baseImage: o.baseImage,
    nodePath: rt?.nodePath,
    // Its result is read by a person, not the master: no fingerprint to pin, so plain HTTP (see docs/threat-model.md).
    tls: false,
  });
  const v = o.bundle.versionInfo;
  return `#!/bin/sh
# D8 Fleet: self-contained agent install for slave "${o.slave.name}" (stack ${o.stack}).
# Generated ${new Date().toISOString()} by \`d8 bootstrap-script\`: bundle ${o.bundle.hash.slice(0, 16)}, commit ${v.commit} (${v.branch}).
# Run it ON the slave, as the user the agent should run as:   sh ./${path.basename(`install-${o.slave.name}.sh`)}
# It tries ${o.slave.strategies.join(' -> ')} and prints one JSON line with the result.
# It CONTAINS THE AGENT TOKEN: keep it private (mode 0700) and delete it after use.
set -eu
umask 077
D8_MASTER=${q(o.master)}
D8_BUNDLE_DIR="$HOME"/${q(dir)}
for t in base64 tar gzip sed; do
  command -v "$t" >/dev/null 2>&1 || { echo "d8 bootstrap: $t is missing on this host" >&2; exit 1; }
done
mkdir -p "$D8_BUNDLE_DIR"
sed '1,/^${MARKER}$/d; /^${RUNTIME_MARKER}$/,$d' "$0" | base64 -d | tar xzf - -C "$D8_BUNDLE_DIR" ||
  { echo "d8 bootstrap: cannot unpack the embedded bundle (was this file edited or truncated?)" >&2; exit 1; }
${rt?.prelude ?? ''}rc=0
printf '%s\\n' ${q(o.token)} | ${cmd} || rc=$?
if [ "$rc" -eq 0 ]; then
  echo "d8 bootstrap: the agent runs on port ${o.slave.agentPort}; the master ($D8_MASTER) sees it at its next health sweep" >&2
else
  echo "d8 bootstrap: the install failed (exit $rc): see the attempts above and ~/.d8-agent/logs" >&2
fi
exit "$rc"
${MARKER}
${b64}
${rt?.payload ?? ''}`;
}

/** Writes the script with mode 0700 (it holds the token); refuses to follow a symlink. */
export function writeBootstrapScript(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o700, flag: 'wx' });
  fs.chmodSync(tmp, 0o700);
  fs.renameSync(tmp, file);
}
