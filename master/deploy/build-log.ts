/**
 * The JSON build log of one deploy, in the seed format (slave_id, slave_host, status, strategy,
 * commands [{command, success, stdout, stderr, exit_code, timestamp}], error, timestamp) plus a few
 * D8 fields. Written under D8_HOME/build_logs/ with mode 0600; every string goes through the
 * Redactor first, so no token, key or GIT_TOKEN-like value is ever on disk.
 */
import fs from 'fs';
import path from 'path';
import { d8Home, ensurePrivateDir } from '../../core/paths';
import type { Redactor } from '../../core/redact';
import type { Strategy } from '../../core/protocol';
import type { InstallAttempt } from '../../core/install-result';
import type { DeployEngine } from './deployer';

export interface BuildLogCommand {
  command: string;
  success: boolean;
  stdout: string;
  stderr: string;
  exit_code: number | null;
  timestamp: string;
}

export interface BuildLogDocument {
  slave_id: string;
  slave_host: string;
  status: 'success' | 'failed' | 'up_to_date';
  strategy: Strategy | null;
  commands: BuildLogCommand[];
  error: string | null;
  timestamp: string;
  engine: DeployEngine;
  reason: string;
  commit: string | null;
  bundle_hash: string | null;
  attempts: InstallAttempt[];
  duration_ms: number;
}

/** Output kept per command in the log; the installer's own logs stay on the slave. */
const MAX_OUTPUT_CHARS = 64 * 1024;
const clip = (s: string): string => (s.length > MAX_OUTPUT_CHARS ? `${s.slice(0, MAX_OUTPUT_CHARS)}\n… (${s.length - MAX_OUTPUT_CHARS} more characters)` : s);

export function buildLogDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(d8Home(env), 'build_logs');
}

/** Local time as in the seed: build_<slave>_2025-11-19_143022.json */
function stamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}_${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export class BuildLog {
  private readonly started = new Date();
  private readonly commands: BuildLogCommand[] = [];

  constructor(
    private readonly slave: { name: string; host: string },
    private readonly engine: DeployEngine,
    private readonly reason: string,
    private readonly redactor: Redactor,
  ) {}

  record(cmd: Omit<BuildLogCommand, 'timestamp'> & { timestamp?: string }): void {
    this.commands.push({
      command: cmd.command,
      success: cmd.success,
      stdout: clip(cmd.stdout),
      stderr: clip(cmd.stderr),
      exit_code: cmd.exit_code,
      timestamp: cmd.timestamp ?? new Date().toISOString(),
    });
  }

  get commandCount(): number {
    return this.commands.length;
  }

  document(outcome: {
    status: BuildLogDocument['status'];
    strategy: Strategy | null;
    error: string | null;
    commit: string | null;
    bundleHash: string | null;
    attempts: InstallAttempt[];
  }): BuildLogDocument {
    return this.redactor.value({
      slave_id: this.slave.name,
      slave_host: this.slave.host,
      status: outcome.status,
      strategy: outcome.strategy,
      commands: this.commands,
      error: outcome.error,
      timestamp: this.started.toISOString(),
      engine: this.engine,
      reason: this.reason,
      commit: outcome.commit,
      bundle_hash: outcome.bundleHash,
      attempts: outcome.attempts,
      duration_ms: Date.now() - this.started.getTime(),
    });
  }

  /** Writes the (redacted) document atomically with mode 0600; returns its path. */
  write(doc: BuildLogDocument, env: NodeJS.ProcessEnv = process.env): string {
    const dir = ensurePrivateDir(buildLogDir(env));
    const base = `build_${this.slave.name}_${stamp(this.started)}`;
    let file = path.join(dir, `${base}.json`);
    for (let i = 2; fs.existsSync(file); i++) file = path.join(dir, `${base}_${i}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(doc, null, 2) + '\n', { mode: 0o600 });
    fs.renameSync(tmp, file);
    return file;
  }
}
