/**
 * A second, separate Docker engine on this machine (its own dockerd, data root, containerd and
 * socket; vfs storage), standing for the master's engine when the test host's engine is this
 * machine's main one: an image only it holds is on the master and not on the host. It runs in a
 * network namespace of its own: a dockerd sharing the main one's namespace removes the main
 * engine's docker0 bridge when it stops (seen here), breaking every container started after.
 */
import { execFileSync, spawn, spawnSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';

export interface SecondEngine {
  /** DOCKER_HOST for a docker CLI that talks to it. */
  dockerHost: string;
  stop(): void;
}

export async function startSecondEngine(prefix: string): Promise<SecondEngine> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const sock = path.join(dir, 'docker.sock');
  const log = fs.openSync(path.join(dir, 'dockerd.log'), 'a');
  const child = spawn('unshare', ['--net', '--', 'dockerd', '--data-root', path.join(dir, 'root'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'dockerd.pid'),
    '-H', `unix://${sock}`, '--bridge', 'none', '--iptables=false', '--ip-masq=false', '--storage-driver', 'vfs'],
  { stdio: ['ignore', log, log], detached: true });
  fs.closeSync(log);
  const dockerHost = `unix://${sock}`;
  const stop = (): void => {
    try { process.kill(child.pid!, 'SIGTERM'); } catch { /* gone */ }
    for (let i = 0; i < 100 && spawnSync('kill', ['-0', String(child.pid)]).status === 0; i++) spawnSync('sleep', ['0.1']);
    spawnSync('umount', ['-R', path.join(dir, 'root')], { stdio: 'ignore' });
    fs.rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    if (spawnSync('docker', ['info'], { env: { ...process.env, DOCKER_HOST: dockerHost }, stdio: 'ignore', timeout: 10_000 }).status === 0) {
      return { dockerHost, stop };
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const why = fs.readFileSync(path.join(dir, 'dockerd.log'), 'utf8').split('\n').slice(-5).join('\n');
  stop();
  throw new Error(`a second dockerd did not start within 20 s:\n${why}`);
}

/** `docker save IMAGE` on this machine's main engine | `docker load` into `engine`, tagged `as`. */
export function copyImageInto(engine: SecondEngine, image: string, as: string): void {
  execFileSync('sh', ['-c', `docker save "$1" | DOCKER_HOST="$2" docker load >/dev/null && DOCKER_HOST="$2" docker tag "$1" "$3"`, 'sh', image, engine.dockerHost, as],
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
}
