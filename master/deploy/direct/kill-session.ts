/**
 * Ends every process of a session: a local installer is spawned as a session leader, and what it
 * starts stays in that session even when it makes a process group of its own (GNU `timeout` does),
 * so killing the session reaches all of it. An agent the installer detached with setsid has its own
 * session and is left alone.
 */
import fs from 'fs';
import { procStatFields } from '../../store/deploy-locks';

/** Pids of the live processes in session `sid` (field 6 of /proc/PID/stat). */
export function sessionPids(sid: number): number[] {
  const out: number[] = [];
  let entries: string[];
  try { entries = fs.readdirSync('/proc'); } catch { return out; }
  for (const d of entries) {
    if (!/^\d+$/.test(d)) continue;
    const f = procStatFields(Number(d));
    if (f && f[0] !== 'Z' && Number(f[3]) === sid) out.push(Number(d));
  }
  return out;
}

/** SIGKILLs session `sid`'s process group and then every process left in the session (a few rounds, for ones forked meanwhile). */
export function killSession(sid: number): void {
  const kill = (pid: number): void => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } };
  kill(-sid);
  for (let round = 0; round < 5; round++) {
    const left = sessionPids(sid).filter((p) => p !== process.pid);
    if (!left.length) return;
    left.forEach(kill);
  }
}
