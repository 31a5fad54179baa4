/**
 * A stack of one system test run kept in the checkout (the daemon reads stacks from its --repo and
 * deploys build the bundle from it) under a random name, with its own D8_HOME, and `d8 master` on it
 * with 1-second sweeps. `cleanup()` stops the daemon and removes the stack file and the temp dir.
 */
import { spawn, type ChildProcess } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { REPO, tempDir } from './hosts';

export class CheckoutStack {
  readonly stack: string;
  readonly stackFile: string;
  readonly dir: string;
  readonly home: string;
  readonly daemonLog: string;
  private daemon: ChildProcess | null = null;

  constructor(prefix: string) {
    this.stack = `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
    this.stackFile = path.join(REPO, `Pulumi.${this.stack}.yaml`);
    this.dir = tempDir(`d8-systest-${prefix}-`);
    this.home = path.join(this.dir, 'home');
    this.daemonLog = path.join(this.dir, 'daemon.log');
  }

  /** Writes the stack file: `config:` and the given lines of it. */
  write(configLines: string): void {
    fs.writeFileSync(this.stackFile, `config:\n${configLines}`);
  }

  /** The environment of every d8 process of the run: this D8_HOME, the fleet token, no key from the caller's environment. */
  env(fleetToken: string): NodeJS.ProcessEnv {
    return { ...process.env, D8_HOME: this.home, D8_AGENT_TOKEN: fleetToken, D8_SSH_KEY_PATH: '', D8_SSH_PRIVATE_KEY: '' };
  }

  /** Starts `d8 master --interval 1 --engine direct` on the stack; its output goes to daemonLog. */
  startDaemon(env: NodeJS.ProcessEnv): ChildProcess {
    const log = fs.openSync(this.daemonLog, 'a');
    this.daemon = spawn(process.execPath, [path.join(REPO, 'bin', 'd8.js'), 'master', '--stack', this.stack, '--repo', REPO, '--engine', 'direct', '--interval', '1'], {
      cwd: REPO, stdio: ['ignore', log, log], env,
    });
    fs.closeSync(log);
    return this.daemon;
  }

  readDaemonLog(): string {
    return fs.readFileSync(this.daemonLog, 'utf8');
  }

  async stopDaemon(): Promise<void> {
    const d = this.daemon;
    if (!d || d.exitCode !== null || d.signalCode !== null) return;
    d.kill('SIGTERM');
    await new Promise((r) => d.once('exit', r));
  }

  async cleanup(): Promise<void> {
    await this.stopDaemon();
    fs.rmSync(this.stackFile, { force: true });
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
