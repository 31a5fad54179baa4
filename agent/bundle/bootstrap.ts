/**
 * A self-contained install script for a slave the master cannot SSH into (`d8 bootstrap-script`):
 * one POSIX sh file with the bundle embedded (tar.gz, base64), the agent token and the master's
 * address filled in. Run on the slave, it unpacks the bundle where a direct deploy would have put it
 * and runs the same install.sh command line (agent/install/command.ts), token on stdin.
 */
import { execFileSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { installCommand, remoteBundleDir } from '../install/command';
import type { SlaveConfig } from '../../core/stack-config';
import type { BundleInfo } from './build';
import { shQuote as q } from '../../core/shell-quote';

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
}

const MARKER = '__D8_BUNDLE_BELOW__';

export function bootstrapScript(o: BootstrapScriptOptions): string {
  const tgz = execFileSync('tar', ['czf', '-', '-C', o.bundle.dir, ...o.bundle.files], { maxBuffer: 256 * 1024 * 1024 });
  const b64 = tgz.toString('base64').replace(/.{76}/g, '$&\n');
  const dir = remoteBundleDir(o.bundle.hash);
  const cmd = installCommand({
    bundleDir: dir,
    strategies: o.slave.strategies,
    attempts: o.attempts,
    delaySeconds: o.delaySeconds,
    agentPort: o.slave.agentPort,
    baseImage: o.baseImage,
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
sed '1,/^${MARKER}$/d' "$0" | base64 -d | tar xzf - -C "$D8_BUNDLE_DIR" ||
  { echo "d8 bootstrap: cannot unpack the embedded bundle (was this file edited or truncated?)" >&2; exit 1; }
rc=0
printf '%s\\n' ${q(o.token)} | ${cmd} || rc=$?
if [ "$rc" -eq 0 ]; then
  echo "d8 bootstrap: the agent runs on port ${o.slave.agentPort}; the master ($D8_MASTER) sees it at its next health sweep" >&2
else
  echo "d8 bootstrap: the install failed (exit $rc): see the attempts above and ~/.d8-agent/logs" >&2
fi
exit "$rc"
${MARKER}
${b64}
`;
}

/** Writes the script with mode 0700 (it holds the token); refuses to follow a symlink. */
export function writeBootstrapScript(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o700, flag: 'wx' });
  fs.chmodSync(tmp, 0o700);
  fs.renameSync(tmp, file);
}
