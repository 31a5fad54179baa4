/** What the master sees of an agent on a container host, and the host user's own uninstall. */
import { execFile } from 'child_process';
import { promisify } from 'util';
import type { HealthResponse } from '../../../core/protocol';
import { probeInstalled } from '../../support/agent-process';
import { rootExec, traces, type ContainerHost } from '../../../scripts/test-hosts/containers';

const execFileP = promisify(execFile);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function health(h: ContainerHost): Promise<HealthResponse | null> {
  const r = await probeInstalled(h.host, h.agentPort, 2000);
  return r.ok ? r.health : null;
}

export async function healthWithin(h: ContainerHost, ms: number): Promise<HealthResponse | null> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await health(h);
    if (got || Date.now() > deadline) return got;
    await sleep(500);
  }
}

/** Runs a script over SSH as the host's user with the test key; resolves with its output even when it fails. */
export async function sshRun(h: ContainerHost, key: string, script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await execFileP('ssh', ['-i', key, '-p', String(h.sshPort), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', `${h.user}@${h.host}`, script], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

/** The user's own uninstall.sh, run over SSH from the bundle the deploy left; returns what it said. */
export async function uninstallOverSsh(h: ContainerHost, key: string): Promise<string> {
  const script = `for d in "$HOME"/.d8-agent/bundles/*/; do sh "$d"uninstall.sh --port ${h.agentPort}; exit $?; done; echo "no bundle left" >&2; exit 1`;
  const r = await sshRun(h, key, script);
  if (r.code !== 0) throw new Error(`uninstall on ${h.container} exited ${r.code}: ${r.stderr}`);
  return r.stderr;
}

/**
 * A refused host is left as it was: no ~/.d8-agent, no unit, cron line or linger, and no process of
 * the user once the SSH sessions are gone (logind stops the user's manager ~10 s after the last one).
 */
export async function expectUntouched(h: ContainerHost): Promise<void> {
  expect(rootExec(h, 'test -e /home/d8/.d8-agent && echo left || echo clean').out.trim()).toBe('clean');
  let procs = '';
  for (let i = 0; i < 60; i++) {
    procs = rootExec(h, 'ps -u d8 -o pid=,args= || true').out.trim();
    if (!procs) break;
    await sleep(500);
  }
  expect(procs).toBe('');
  expect(traces(h)).toEqual({ units: [], cronLines: [], processes: [], linger: [] });
}
