/**
 * Which execution methods this host offers. Detected once at start; afterwards re-checked lazily
 * (at most every `recheckMs`, in the background for health, awaited by an execute that needs a
 * method that looked unavailable), so a health request never runs a subprocess.
 */
import fs from 'fs';
import path from 'path';
import { execFile } from 'child_process';
import type { ExecutionMethods, Strategy } from '../core/protocol';

export interface MethodStatus {
  available: boolean;
  /** Why the method is unavailable (null when available). */
  reason: string | null;
}

export interface MethodsOptions {
  venvDir: string | null;
  taskImage: string;
  python: string;
  /** Staleness after which a cached answer is re-checked. */
  recheckMs?: number;
  /** An execute needing a method cached as unavailable re-checks it when older than this. */
  unavailableRecheckMs?: number;
}

interface Cached {
  status: MethodStatus;
  checkedAt: number;
  inflight: Promise<MethodStatus> | null;
}

const PROBE_TIMEOUT_MS = 5000;

function run(file: string, args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string; code: string | number | null }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: PROBE_TIMEOUT_MS, encoding: 'utf8', maxBuffer: 64 * 1024 }, (err, stdout, stderr) => {
      const code = err ? ((err as NodeJS.ErrnoException).code ?? (err as { status?: number }).status ?? null) : 0;
      resolve({ ok: !err, stdout: String(stdout ?? ''), stderr: String(stderr ?? ''), code: code as string | number | null });
    });
  });
}

export function venvPython(venvDir: string): string {
  return path.join(venvDir, 'bin', 'python');
}

export async function probeDocker(image: string): Promise<MethodStatus> {
  const r = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', image]);
  if (r.ok) return { available: true, reason: null };
  if (r.code === 'ENOENT') return { available: false, reason: 'the docker CLI is not installed' };
  const err = r.stderr.trim().split('\n')[0] ?? '';
  if (/no such (image|object)/i.test(err)) {
    return { available: false, reason: `the task image ${image} does not exist (build it with scripts/docker-base-image.sh, or set D8_TASK_IMAGE)` };
  }
  if (/cannot connect|permission denied|is the docker daemon running/i.test(err)) {
    return { available: false, reason: `the docker engine is not reachable (${err.slice(0, 160)})` };
  }
  return { available: false, reason: `docker image inspect ${image} failed (${err.slice(0, 160) || `exit ${String(r.code)}`})` };
}

export function probeVenv(venvDir: string | null): MethodStatus {
  if (venvDir === null) return { available: false, reason: 'D8_VENV_DIR is not set' };
  const py = venvPython(venvDir);
  return fs.existsSync(py) ? { available: true, reason: null } : { available: false, reason: `${py} does not exist (D8_VENV_DIR=${venvDir})` };
}

export async function probePythonVersion(python: string): Promise<string | null> {
  const r = await run(python, ['--version']);
  if (!r.ok) return null;
  const m = /Python\s+(\S+)/.exec(`${r.stdout} ${r.stderr}`);
  return m ? m[1] : null;
}

export class ExecutionMethodsProbe {
  private readonly cache: Record<Strategy, Cached>;
  private readonly recheckMs: number;
  private readonly unavailableRecheckMs: number;
  pythonVersion: string | null = null;

  constructor(private readonly opts: MethodsOptions) {
    this.recheckMs = opts.recheckMs ?? 30_000;
    this.unavailableRecheckMs = opts.unavailableRecheckMs ?? 2_000;
    const unknown = (): Cached => ({ status: { available: false, reason: 'not checked yet' }, checkedAt: 0, inflight: null });
    this.cache = { docker: unknown(), venv: unknown(), native: { status: { available: true, reason: null }, checkedAt: Infinity, inflight: null } };
  }

  /** The first detection, before the agent starts listening. */
  async init(): Promise<void> {
    await Promise.all([this.refresh('docker'), this.refresh('venv')]);
    const venv = this.cache.venv.status.available && this.opts.venvDir ? venvPython(this.opts.venvDir) : null;
    this.pythonVersion = (venv ? await probePythonVersion(venv) : null) ?? (await probePythonVersion(this.opts.python));
  }

  /** Cached availability, for health. Stale entries are refreshed in the background. */
  snapshot(): ExecutionMethods {
    const now = Date.now();
    for (const m of ['docker', 'venv'] as const) {
      if (now - this.cache[m].checkedAt > this.recheckMs) void this.refresh(m);
    }
    return { docker: this.cache.docker.status.available, venv: this.cache.venv.status.available, native: true };
  }

  /** Availability for an execution: re-checks an unavailable method that was last seen a while ago. */
  async status(method: Strategy): Promise<MethodStatus> {
    const c = this.cache[method];
    const age = Date.now() - c.checkedAt;
    if ((!c.status.available && age > this.unavailableRecheckMs) || age > this.recheckMs) return this.refresh(method);
    return c.status;
  }

  private refresh(method: Strategy): Promise<MethodStatus> {
    const c = this.cache[method];
    if (method === 'native') return Promise.resolve(c.status);
    if (c.inflight) return c.inflight;
    const probe = method === 'docker' ? probeDocker(this.opts.taskImage) : Promise.resolve(probeVenv(this.opts.venvDir));
    c.inflight = probe
      .catch((err: Error): MethodStatus => ({ available: false, reason: `probe failed: ${err.message}` }))
      .then((status) => {
        c.status = status;
        c.checkedAt = Date.now();
        c.inflight = null;
        return status;
      });
    return c.inflight;
  }
}
