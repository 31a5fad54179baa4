/**
 * Deciding whether a stack lock left behind is stale, before anyone runs `pulumi cancel`.
 *
 * A ConcurrentUpdateError means the stack is locked. Our own operations are already serialized
 * in-process, so the holder is either another live process (a person running `pulumi up`, another
 * master) — which must never be cancelled — or an update whose process died (a crash, a power cut on
 * the Pi), which never unlocks by itself. The approach:
 *  - self-managed (file://) backend: the lock file (`.pulumi/locks/…/<stack>/<id>.json`) records
 *    pid, hostname and timestamp of the holder. It is stale only when the hostname is this host and
 *    that pid is no longer alive (or when it is older than `maxAgeMs`, default 6 h, which no update
 *    of a few slaves ever takes).
 * Any other backend (Pulumi Cloud, object storage): the holder cannot be inspected, so a lock there is
 * never taken for stale; the operation fails with an error naming the stack and the fix.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { z } from 'zod';
import { pidAlive } from '../../store/master-info';

export const LockFileSchema = z.object({
  pid: z.number().int(),
  username: z.string().optional(),
  hostname: z.string(),
  timestamp: z.string(),
});
export type LockFile = z.infer<typeof LockFileSchema>;

export interface LockInfo extends LockFile {
  file: string;
}

export type LockVerdict =
  | { stale: true; why: string; lock?: LockInfo }
  | { stale: false; why: string; lock?: LockInfo };

/** The local directory of a file:// backend URL, or null for any other backend. */
export function fileBackendDir(url: string | undefined): string | null {
  if (!url || !url.startsWith('file://')) return null;
  let p = url.slice('file://'.length);
  if (p.startsWith('~')) p = path.join(os.homedir(), p.slice(1));
  return p;
}

/** Every lock file of `stack` under a file backend (both the legacy and the project-scoped layout). */
export function findLockFiles(backendDir: string, stack: string): LockInfo[] {
  const root = path.join(backendDir, '.pulumi', 'locks');
  const out: LockInfo[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries: fs.Dirent[];
    try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && depth < 4) walk(p, depth + 1);
      else if (e.isFile() && e.name.endsWith('.json') && path.basename(dir) === stack) {
        try {
          const parsed = LockFileSchema.safeParse(JSON.parse(fs.readFileSync(p, 'utf8')));
          if (parsed.success) out.push({ ...parsed.data, file: p });
        } catch { /* unreadable: not ours to judge */ }
      }
    }
  };
  walk(root, 0);
  return out;
}

export function judgeLock(lock: LockInfo, opts: { hostname?: string; now?: number; maxAgeMs?: number; alive?: (pid: number) => boolean } = {}): LockVerdict {
  const host = opts.hostname ?? os.hostname();
  const now = opts.now ?? Date.now();
  const maxAge = opts.maxAgeMs ?? 6 * 3600_000;
  const alive = opts.alive ?? pidAlive;
  const age = now - Date.parse(lock.timestamp);
  if (lock.hostname === host) {
    if (!alive(lock.pid)) return { stale: true, why: `held by pid ${lock.pid} on this host, which is no longer running`, lock };
    return { stale: false, why: `held by pid ${lock.pid} on this host, which is still running`, lock };
  }
  if (Number.isFinite(age) && age > maxAge) return { stale: true, why: `held by ${lock.hostname} pid ${lock.pid} since ${lock.timestamp} (older than ${Math.round(maxAge / 3600_000)} h)`, lock };
  return { stale: false, why: `held by ${lock.hostname} pid ${lock.pid} since ${lock.timestamp}; it may still be running`, lock };
}
