/**
 * The master's Node.js runtime cache, `D8_HOME/runtimes/<version>/`: official linux tarballs per
 * arch plus the release's SHASUMS256.txt, fetched once from the mirror (`d8:nodeDistUrl`) and
 * checked against SHASUMS256.txt when fetched and again every time one is handed out. Used by the
 * direct deployer, the CLI (`d8 runtime fetch`, `d8 bootstrap-script --arch`) and the Pulumi program.
 */
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { Readable, Transform } from 'stream';
import { pipeline } from 'stream/promises';
import { d8Home, ensurePrivateDir } from './paths';
import { runtimeTarball, type RuntimeArch, type RuntimeSource } from './node-runtime';

export const SHASUMS_FILE = 'SHASUMS256.txt';

export interface CachedRuntime {
  version: string;
  arch: RuntimeArch;
  /** Absolute path of the tarball in the cache. */
  file: string;
  sha256: string;
  bytes: number;
  /** Whether this call downloaded it (false: it was already in the cache). */
  fetched: boolean;
}

/** The tarball (or the cached copy) does not match SHASUMS256.txt. */
export class RuntimeChecksumError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuntimeChecksumError';
  }
}

/** The mirror could not be reached or does not have the file. */
export class RuntimeFetchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuntimeFetchError';
  }
}

export function runtimesDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(d8Home(env), 'runtimes');
}

export async function sha256File(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  await pipeline(fs.createReadStream(file), h);
  return h.digest('hex');
}

/** The sha256 SHASUMS256.txt lists for `name`, or null. */
export function shasumFor(shasums: string, name: string): string | null {
  for (const line of shasums.split('\n')) {
    const m = /^([0-9a-f]{64})\s+\*?(\S+)\s*$/.exec(line.trim());
    if (m && m[2] === name) return m[1];
  }
  return null;
}

/** How long a mirror may take to start answering (the body itself may take longer). */
const HEADERS_TIMEOUT_MS = 30000;

async function get(url: string, what: string): Promise<Response> {
  let res: Response;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`no answer within ${HEADERS_TIMEOUT_MS / 1000} s`)), HEADERS_TIMEOUT_MS);
  try {
    res = await fetch(url, { redirect: 'follow', signal: abort.signal });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new RuntimeFetchError(`cannot fetch ${what} from ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message} ` +
      '(an offline master: run `d8 runtime fetch` while online; or set d8:nodeDistUrl to a mirror this master reaches)');
  } finally {
    clearTimeout(timer);
  }
  if (!res.ok) {
    throw new RuntimeFetchError(`cannot fetch ${what}: GET ${url} answered HTTP ${res.status} (is that release on the mirror? check d8:nodeDistUrl and d8:nodeVersion)`);
  }
  return res;
}

/** Downloads to a private temporary file next to `dest`; returns it unverified. */
async function download(url: string, dest: string, what: string): Promise<{ tmp: string; sha256: string; bytes: number }> {
  const res = await get(url, what);
  if (!res.body) throw new RuntimeFetchError(`GET ${url} returned no body`);
  const h = crypto.createHash('sha256');
  let bytes = 0;
  const tmp = `${dest}.part-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    await pipeline(
      Readable.fromWeb(res.body as import('stream/web').ReadableStream),
      new Transform({ transform(chunk: Buffer, _enc, cb) { h.update(chunk); bytes += chunk.length; cb(null, chunk); } }),
      fs.createWriteStream(tmp, { mode: 0o600 }),
    );
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new RuntimeFetchError(`download of ${url} broke off after ${bytes} bytes: ${(err as Error).message}`);
  }
  return { tmp, sha256: h.digest('hex'), bytes };
}

export interface RuntimeCacheOptions {
  env?: NodeJS.ProcessEnv;
  onProgress?: (message: string) => void;
}

/**
 * Concurrent callers in one process share one download; separate processes each download to a
 * private .part file and rename it into place, so a half-written tarball is never seen.
 */
export class RuntimeCache {
  private readonly inflight = new Map<string, Promise<CachedRuntime>>();

  constructor(private readonly opts: RuntimeCacheOptions = {}) {}

  dir(version: string): string {
    return path.join(runtimesDir(this.opts.env), version);
  }

  /** The tarball for `arch`, verified; downloaded first when missing (or when the cached copy is bad). */
  ensure(src: RuntimeSource, arch: RuntimeArch): Promise<CachedRuntime> {
    const key = `${src.distUrl}|${src.version}|${arch}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.ensureNow(src, arch).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async shasums(src: RuntimeSource): Promise<string> {
    const dir = ensurePrivateDir(this.dir(src.version));
    const file = path.join(dir, SHASUMS_FILE);
    if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8');
    const url = `${src.distUrl}/${src.version}/${SHASUMS_FILE}`;
    const text = await (await get(url, `${SHASUMS_FILE} of Node.js ${src.version}`)).text();
    if (!/^[0-9a-f]{64}\s/m.test(text)) throw new RuntimeFetchError(`${url} is not a SHASUMS256.txt (no "<sha256>  <file>" lines)`);
    const tmp = `${file}.part-${process.pid}`;
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    fs.renameSync(tmp, file);
    return text;
  }

  private async ensureNow(src: RuntimeSource, arch: RuntimeArch): Promise<CachedRuntime> {
    const name = runtimeTarball(src.version, arch);
    const shasums = await this.shasums(src);
    const want = shasumFor(shasums, name);
    if (!want) {
      throw new RuntimeFetchError(`${SHASUMS_FILE} of Node.js ${src.version} (${src.distUrl}/${src.version}/) lists no ${name}: that release has no linux-${arch} build on this mirror`);
    }
    const file = path.join(this.dir(src.version), name);
    if (fs.existsSync(file)) {
      const got = await sha256File(file);
      if (got === want) return { version: src.version, arch, file, sha256: want, bytes: fs.statSync(file).size, fetched: false };
      this.opts.onProgress?.(`cached ${name} does not match ${SHASUMS_FILE} (sha256 ${got}, expected ${want}): fetching it again`);
      fs.rmSync(file, { force: true });
    }
    const url = `${src.distUrl}/${src.version}/${name}`;
    this.opts.onProgress?.(`fetching ${url}`);
    const got = await download(url, file, `Node.js ${src.version} for linux-${arch}`);
    if (got.sha256 !== want) {
      fs.rmSync(got.tmp, { force: true });
      throw new RuntimeChecksumError(`checksum mismatch for ${name} from ${url}: ${SHASUMS_FILE} says sha256 ${want}, the download is ${got.sha256} ` +
        `(${got.bytes} bytes); nothing was cached. The mirror or the network corrupted it: try again, or set d8:nodeDistUrl to another mirror`);
    }
    fs.renameSync(got.tmp, file);
    return { version: src.version, arch, file, sha256: want, bytes: got.bytes, fetched: true };
  }
}
