/**
 * bench:deploy rows for the shipped Node.js runtime, on the "nonode" test host (node hidden) with a
 * loopback mirror of this machine's node (scripts/test-hosts/node-mirror.ts):
 *   fresh install incl. the runtime push   nothing on the host (uninstalled), the master's cache warm
 *   redeploy with the runtime present      forced, venv and runtime already there
 *   runtime push alone                     SFTP upload + sha256 check + unpack, MB/s of the tarball
 */
import fs from 'fs';
import type { BundleInfo } from '../agent/bundle/build';
import type { DeployResult } from '../master/deploy/deployer';
import { DirectDeployer } from '../master/deploy/direct';
import { SshShell } from '../master/deploy/direct/shell';
import { RuntimeCache } from '../core/runtime-cache';
import { ensureRemoteRuntime } from '../master/runtime/push';
import { nodeMirrorDir, serveNodeMirror } from '../scripts/test-hosts/node-mirror';
import { fleetConfig, freePort, REPO, uninstallAsUser, type TestHosts } from '../scripts/test-hosts/hosts';

/** A row that could not run has `failed` (the reason) and no runs. */
export interface BenchRow { what: string; runs: number[]; target: string; pass: boolean | null; note?: string; failed?: string }

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

export async function runtimeRows(o: {
  th: TestHosts; bundle: BundleInfo; env: NodeJS.ProcessEnv; runs: number;
  timed: (fn: () => Promise<void>) => Promise<number>; say: (s: string) => void;
}): Promise<BenchRow[]> {
  const { th, bundle, env, runs, timed, say } = o;
  const host = th.hosts.nonode;
  const mirror = nodeMirrorDir();
  const server = await serveNodeMirror(mirror.root);
  const rows: BenchRow[] = [];
  try {
    const cfg = fleetConfig(th, [{ name: 'nonode', host, agentPort: await freePort(), strategies: ['venv'] }],
      { nodeDistUrl: server.url, nodeVersion: mirror.version });
    const cache = new RuntimeCache({ env });
    await cache.ensure({ version: mirror.version, distUrl: server.url }, 'x64');
    const deployer = new DirectDeployer({ config: cfg, bundle, env, healthTimeoutSeconds: 60, runtimeCache: cache });
    const ok = (r: DeployResult): void => { if (!r.ok || r.strategy !== 'venv') throw new Error(`nonode: ${r.error}`); };

    const fresh: number[] = [];
    for (let i = 0; i < runs; i++) {
      uninstallAsUser(REPO, host.user);
      let r!: DeployResult;
      fresh.push(await timed(async () => { r = await deployer.deploy(cfg.slaves[0], { reason: 'bench', force: true }); }));
      ok(r);
      say(`fresh install with runtime push #${i + 1}: ${(fresh[i] / 1000).toFixed(2)} s`);
    }
    rows.push({ what: `fresh install, no-node host, incl. runtime push (${(mirror.bytes / 1048576).toFixed(0)} MiB)`, runs: fresh, target: '< 20.00 s', pass: median(fresh) < 20000 });

    const again: number[] = [];
    for (let i = 0; i < runs; i++) {
      let r!: DeployResult;
      again.push(await timed(async () => { r = await deployer.deploy(cfg.slaves[0], { reason: 'bench', force: true }); }));
      ok(r);
    }
    rows.push({ what: 'redeploy (forced, venv), runtime already there', runs: again, target: '< 2.00 s', pass: median(again) < 2000 });

    const key = fs.readFileSync(th.key, 'utf8');
    const shell = await SshShell.connect({ name: 'nonode', host: host.host, port: host.port, user: host.user, privateKey: key, keyDescription: th.key, hostKey: host.hostKey });
    const rt = await cache.ensure({ version: mirror.version, distUrl: server.url }, 'x64');
    const push: number[] = [];
    const upload: number[] = [];
    try {
      for (let i = 0; i < runs; i++) {
        await shell.exec(`rm -rf ${host.home}/.d8-agent/runtime/node-*`);
        push.push(await timed(async () => { await ensureRemoteRuntime({ shell, home: host.home, runtime: rt }); }));
        await shell.exec(`mkdir -p /tmp/d8-bench-$(id -un) && rm -f /tmp/d8-bench-$(id -un)/rt.tar.gz`);
        upload.push(await timed(() => shell.upload([{ local: rt.file, remote: `/tmp/d8-bench-${host.user}/rt.tar.gz` }])));
      }
      await shell.exec(`rm -rf /tmp/d8-bench-$(id -un)`);
    } finally {
      await shell.close();
    }
    const mbps = (ms: number): string => `${(rt.bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
    rows.push({ what: 'runtime push alone (SFTP + sha256 on host + unpack)', runs: push, target: '-', pass: null, note: mbps(median(push)) });
    rows.push({ what: 'runtime upload alone (SFTP)', runs: upload, target: '-', pass: null, note: mbps(median(upload)) });
  } finally {
    await server.close();
    uninstallAsUser(REPO, host.user);
  }
  return rows;
}
