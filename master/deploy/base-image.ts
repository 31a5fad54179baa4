/**
 * The docker strategy's base image on a host, before install.sh builds the agent image from it:
 *   already present → nothing to do
 *   `docker pull`   → the host reaches a registry
 *   shipped         → the master streams it over the deploy's SSH session into `docker load`: from a
 *                     cached tarball in D8_HOME/images (`docker save IMAGE | gzip > …`), else from
 *                     the master's own docker engine (`docker save`, gzip on the way)
 * The loaded image must match the host engine's architecture, else it is removed again. A failure
 * here fails no deploy: install.sh then reports the docker strategy unavailable and tries the next.
 */
import { spawn } from 'child_process';
import fs from 'fs';
import path from 'path';
import { Transform, type Readable } from 'stream';
import zlib from 'zlib';
import { DEFAULT_BASE_IMAGE } from '../../agent/install/command';
import type { HostVerdict } from '../../core/host-probe';
import { d8Home } from '../../core/paths';
import type { FleetConfig, SlaveConfig } from '../../core/stack-config';
import { shQuote as q } from '../../core/shell-quote';
import type { SlaveShell } from './direct/shell';

export type BaseImagePath = 'present' | 'pulled' | 'shipped';

export interface BaseImageOutcome {
  image: string;
  path: BaseImagePath;
  /** shipped: the cached tarball, or `docker save` on the master. */
  source?: string;
  /** shipped: bytes sent over SSH. */
  bytes?: number;
  ms: number;
}

export class BaseImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BaseImageError';
  }
}

/** A command the step ran on the host, for the build log. */
export interface ImageStep {
  command: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface BaseImageOptions {
  shell: SlaveShell;
  image: string;
  /** For D8_HOME (the tarball cache) and the master's docker CLI (DOCKER_HOST…). */
  env?: NodeJS.ProcessEnv;
  record?: (step: ImageStep) => void;
  progress?: (message: string) => void;
  /** `docker pull` on the host may take this long (default 10 min). */
  pullTimeoutMs?: number;
}

/** D8_HOME/images: tarballs of base images for hosts that cannot pull. */
export function imageCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(d8Home(env), 'images');
}

/** `node:22-bookworm-slim` → `node_22-bookworm-slim` (the cached tarball is that + .tar.gz or .tar). */
export function imageFileStem(image: string): string {
  return image.replace(/[/:@]/g, '_');
}

/** The cached tarball for `image`, if there is one. */
export function cachedImageTarball(image: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const stem = path.join(imageCacheDir(env), imageFileStem(image));
  return ['.tar.gz', '.tar'].map((ext) => stem + ext).find((f) => fs.existsSync(f)) ?? null;
}

function masterHasImage(image: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn('docker', ['image', 'inspect', image], { stdio: 'ignore', env });
    p.on('error', () => resolve(false));
    p.on('close', (code) => resolve(code === 0));
  });
}

interface Source {
  label: string;
  stream: Readable;
  /** Resolves with null when the source was read completely, else with why not. */
  done: Promise<string | null>;
}

function tarballSource(file: string): Source {
  const stream = fs.createReadStream(file);
  const done = new Promise<string | null>((resolve) => {
    stream.on('end', () => resolve(null));
    stream.on('error', (err) => resolve(`cannot read ${file}: ${err.message}`));
  });
  return { label: file, stream, done };
}

function dockerSaveSource(image: string, env: NodeJS.ProcessEnv): Source {
  const save = spawn('docker', ['save', image], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  save.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const gz = zlib.createGzip({ level: 1 });
  save.stdout.pipe(gz);
  const done = new Promise<string | null>((resolve) => {
    save.on('error', (err) => { gz.end(); resolve(`docker save ${image} on the master failed: ${err.message}`); });
    save.on('close', (code) => resolve(code === 0 ? null : `docker save ${image} on the master exited ${code}: ${stderr.trim().split('\n').pop() ?? ''}`));
  });
  return { label: `docker save ${image} on the master`, stream: gz, done };
}

/** Docker names an image's architecture as Go does (amd64, arm64, arm); `docker version` too. */
const ARCH_CHECK = (image: string): string =>
  `img=$(docker image inspect -f '{{.Architecture}}' ${q(image)}) && eng=$(docker version -f '{{.Server.Arch}}') && ` +
  `if [ "$img" = "$eng" ]; then echo "arch $img"; else docker rmi ${q(image)} >/dev/null 2>&1; ` +
  `echo "the image is for $img, this host's docker engine runs $eng: removed it again" >&2; exit 3; fi`;

export async function ensureBaseImage(o: BaseImageOptions): Promise<BaseImageOutcome> {
  const { shell, image } = o;
  const env = o.env ?? process.env;
  const t0 = Date.now();
  const step = async (command: string, opts: { timeoutMs: number; stdin?: Readable }, label = command): Promise<ImageStep> => {
    const r = await shell.exec(command, opts);
    const s = { command: label, code: r.code, stdout: r.stdout, stderr: r.stderr };
    o.record?.(s);
    return s;
  };
  const tail = (s: ImageStep): string => `${s.stderr}\n${s.stdout}`.trim().split('\n').pop() ?? `exit ${s.code}`;

  const have = await step(`docker image inspect ${q(image)} >/dev/null 2>&1 && echo present`, { timeoutMs: 60_000 });
  if (have.stdout.trim() === 'present') {
    o.progress?.(`base image ${image}: already on the host`);
    return { image, path: 'present', ms: Date.now() - t0 };
  }
  o.progress?.(`base image ${image}: not on the host; docker pull`);
  const pull = await step(`docker pull ${q(image)}`, { timeoutMs: o.pullTimeoutMs ?? 10 * 60_000 });
  if (pull.code === 0) {
    o.progress?.(`base image ${image}: pulled by the host`);
    return { image, path: 'pulled', ms: Date.now() - t0 };
  }

  const cached = cachedImageTarball(image, env);
  if (!cached && !await masterHasImage(image, env)) {
    throw new BaseImageError(`base image ${image}: the host cannot pull it (${tail(pull)}) and the master has no copy to ship: ` +
      `on the master, \`docker pull ${image}\` (or \`docker save ${image} | gzip > ${path.join(imageCacheDir(env), `${imageFileStem(image)}.tar.gz`)}\` ` +
      'from a machine that has it), or set d8:baseImage to an image the host has');
  }
  const src = cached ? tarballSource(cached) : dockerSaveSource(image, env);
  o.progress?.(`base image ${image}: the host cannot pull it (${tail(pull)}); shipping it from the master (${src.label}) into docker load`);
  let bytes = 0;
  const counted = src.stream.pipe(new Transform({
    transform(chunk: Buffer, _enc, cb) { bytes += chunk.length; cb(null, chunk); },
  }));
  const load = await step('docker load', { timeoutMs: 30 * 60_000, stdin: counted }, `docker load < ${src.label}`);
  // A host that stopped reading early leaves the source unfinished: that is the load's failure.
  const sourceError = await Promise.race([src.done, new Promise<string | null>((r) => setTimeout(() => r(null), 5000).unref())]);
  src.stream.destroy();
  if (sourceError) throw new BaseImageError(`base image ${image}: ${sourceError}`);
  if (load.code !== 0) throw new BaseImageError(`base image ${image}: docker load on the host failed: ${tail(load)}`);
  const check = await step(`docker image inspect ${q(image)} >/dev/null 2>&1 || { echo "docker load did not create ${image}: the tarball holds another image" >&2; exit 2; }; ${ARCH_CHECK(image)}`,
    { timeoutMs: 60_000 });
  if (check.code !== 0) throw new BaseImageError(`base image ${image}: ${tail(check)}`);
  const ms = Date.now() - t0;
  o.progress?.(`base image ${image}: shipped from the master (${src.label}, ${(bytes / 1048576).toFixed(1)} MiB in ${(ms / 1000).toFixed(1)} s)`);
  return { image, path: 'shipped', source: src.label, bytes, ms };
}

export interface BaseImageStepInput {
  slave: Pick<SlaveConfig, 'strategies'>;
  config: Pick<FleetConfig, 'baseImage'>;
  shell: SlaveShell;
  verdict: HostVerdict;
  env?: NodeJS.ProcessEnv;
  record: (step: ImageStep) => void;
  progress: (message: string) => void;
}

/**
 * Both deployers' step before install.sh: only where the docker strategy is configured and the probe
 * found a usable engine. Null when skipped or when the image could not be provided (said in the
 * build log and the progress; install.sh then reports the docker strategy unavailable).
 */
export async function baseImageStep(i: BaseImageStepInput): Promise<BaseImageOutcome | null> {
  if (!i.slave.strategies.includes('docker') || !i.verdict.strategies.find((v) => v.strategy === 'docker')?.ok) return null;
  const image = i.config.baseImage ?? DEFAULT_BASE_IMAGE;
  try {
    return await ensureBaseImage({ shell: i.shell, image, env: i.env, record: i.record, progress: i.progress });
  } catch (err) {
    if (!(err instanceof BaseImageError)) throw err;
    i.record({ command: `base image ${image}`, code: null, stdout: '', stderr: err.message });
    i.progress(`${err.message} (the docker strategy will fail; the next strategies are tried)`);
    return null;
  }
}
