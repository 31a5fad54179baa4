/**
 * Runs one task process in its own process group, with combined output capped and a timeout that
 * kills the whole group (the child and every grandchild it left in the group).
 */
import { spawn } from 'child_process';

/** Keeps at most `max` bytes of output; everything beyond is drained and counted as truncated. */
export class OutputCollector {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    const room = this.max - this.size;
    if (room <= 0) {
      if (chunk.length > 0) this.truncated = true;
      return;
    }
    if (chunk.length > room) {
      this.chunks.push(chunk.subarray(0, room));
      this.size += room;
      this.truncated = true;
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  get bytes(): number {
    return this.size;
  }

  text(): string {
    return Buffer.concat(this.chunks, this.size).toString('utf8');
  }
}

export interface ProcessSpec {
  file: string;
  args: string[];
  cwd?: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  maxOutputBytes: number;
  /** Aborting (e.g. the client went away, or the agent shuts down) kills the group like a timeout. */
  signal?: AbortSignal;
  /** Extra cleanup when the task is killed (e.g. removing a docker container). */
  onKill?: () => void;
}

export interface ProcessOutcome {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  output: string;
  truncated: boolean;
  /** Set when the process could not be started at all. */
  spawnError: string | null;
  durationMs: number;
}

/**
 * After the direct child exits, how long to wait for its output pipes to close. A background
 * grandchild may hold them open forever; the task is over when the child exits.
 */
const PIPE_GRACE_MS = 250;

export function killGroup(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    /* the group is already gone */
  }
}

export function runProcess(spec: ProcessSpec): Promise<ProcessOutcome> {
  const started = process.hrtime.bigint();
  const out = new OutputCollector(spec.maxOutputBytes);
  return new Promise((resolve) => {
    let settled = false;
    let timedOut = false;
    let aborted = false;
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let killed = false;
    const timers: NodeJS.Timeout[] = [];

    let child: ReturnType<typeof spawn>;
    const finish = (spawnError: string | null): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      spec.signal?.removeEventListener('abort', onAbort);
      child?.stdout?.destroy();
      child?.stderr?.destroy();
      resolve({
        exitCode: killed ? null : exitCode,
        signal: exitSignal,
        timedOut,
        aborted,
        output: out.text(),
        truncated: out.truncated,
        spawnError,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
      });
    };
    const kill = (): void => {
      if (killed) return;
      killed = true;
      killGroup(child.pid);
      try {
        spec.onKill?.();
      } catch {
        /* best effort */
      }
      // If something escaped the group and holds our pipes, do not wait for it forever.
      timers.push(setTimeout(() => finish(null), 2000));
    };
    const onAbort = (): void => {
      aborted = true;
      kill();
    };

    try {
      child = spawn(spec.file, spec.args, {
        cwd: spec.cwd,
        env: spec.env,
        detached: true, // setsid(): the child leads a new process group we can kill as a whole
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      finish(`could not start ${spec.file}: ${(err as Error).message}`);
      return;
    }
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => out.push(c));
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (child.pid === undefined) {
        const hint = err.code === 'ENOENT' ? ` (${spec.file} not found)` : err.code === 'E2BIG' ? ' (command too large)' : '';
        finish(`could not start ${spec.file}: ${err.code ?? err.message}${hint}`);
      }
    });
    child.once('exit', (code, sig) => {
      exitCode = code;
      exitSignal = sig;
      timers.push(setTimeout(() => finish(null), PIPE_GRACE_MS));
    });
    child.once('close', () => {
      if (child.pid !== undefined) finish(null);
    });

    timers.push(setTimeout(() => {
      if (settled || exitCode !== null || exitSignal !== null) return;
      timedOut = true;
      kill();
    }, spec.timeoutMs));
    if (spec.signal) {
      if (spec.signal.aborted) onAbort();
      else spec.signal.addEventListener('abort', onAbort, { once: true });
    }
  });
}
