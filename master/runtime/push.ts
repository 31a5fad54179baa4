/**
 * Puts a cached Node.js runtime on a host: over the deploy's shell (SFTP for the tarball), checked
 * again on the host against the sha256 from SHASUMS256.txt, unpacked under
 * ~/.d8-agent/runtime/node-vX-linux-ARCH/. A runtime already there (same sha256, runs, reports the
 * version) is reused: it is kept across redeploys and never pushed twice.
 */
import { REMOTE_RUNTIME_ROOT, runtimeName } from '../../core/node-runtime';
import { runtimePresentTest, UNPACK_RUNTIME_SCRIPT, unpackRuntimeArgs } from '../../core/runtime-unpack';
import { shQuote } from '../../core/shell-quote';
import type { SlaveShell } from '../deploy/direct/shell';
import { RuntimeChecksumError, type CachedRuntime } from '../../core/runtime-cache';

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

/** Prints "present" when the runtime is already on the host, unpacked from this sha256 (and it runs). */
export function presentCommand(dir: string, sha256: string): string {
  return `if ${runtimePresentTest(shQuote(dir), sha256)}; then echo present; fi`;
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

  const have = await step(presentCommand(dir, rt.sha256), 30000);
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
  const r = await step(`sh -c ${shQuote(UNPACK_RUNTIME_SCRIPT)} d8-runtime ${unpackRuntimeArgs({ file: remoteFile, sha256: rt.sha256, name, root, version: rt.version })}`, 10 * 60 * 1000,
    `check sha256 ${rt.sha256} and unpack ${remoteFile} into ${dir} (${Date.now() - started} ms after the upload started)`);
  if (r.code !== 0) {
    const msg = r.stderr.trim().split('\n').pop() || `exit ${r.code}`;
    if (r.code === 3) throw new RuntimeChecksumError(msg);
    throw new RuntimePushError(`cannot install the runtime in ${dir}: ${msg}`, r.code);
  }
  return { nodePath, pushed: true, bytes: rt.bytes, ms: Date.now() - started };
}
