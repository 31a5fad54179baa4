/**
 * bench:deploy's push rows: the same forced redeploy (bundle to ~/.d8-agent/bundles/<hash16>,
 * install.sh, the agents checked over HTTPS pinned to the certificate each install reported) of the
 * same 4 slaves, each way in turn in every run so a drift of the machine's speed hits all alike:
 *   Ansible with its defaults, Ansible tuned (the yardstick), `pulumi up` of this program,
 *   `d8 up --engine direct` (the CLI, a whole process like the two peers') and its deployer
 *   in-process (what the master daemon runs). Each is warmed up once (control sockets, the stack's
 *   first create), untimed. A way that fails gets a row saying why; the others go on.
 */
import fs from 'fs';
import path from 'path';
import { z } from 'zod';
import type { BundleInfo } from '../agent/bundle/build';
import { DeployResultSchema } from '../core/deploy-result';
import type { FleetConfig } from '../core/stack-config';
import { REPO, type TestHosts } from '../scripts/test-hosts/hosts';
import { ansiblePeer, checkAgents } from './ansible-peer';
import { machineCpuMs, median, run } from './bench-util';
import { pulumiPeer, STACK, writeBenchStack } from './pulumi-peer';
import type { BenchRow } from './runtime-rows';

/** One way of doing the push: `push` is timed, `check` is not. `target`: at most this × the yardstick. */
interface Peer { what: string; target?: number; push(): Promise<void>; check(): Promise<void>; close?(): void }

/**
 * `d8 up --engine direct --force` as a user runs it (a whole process, building the bundle from this
 * checkout as it does) on Pulumi.bench.yaml in `dir`; resolves with the fingerprints it reported.
 */
function d8Up(dir: string, th: TestHosts, cfg: FleetConfig, env: NodeJS.ProcessEnv, token: string): () => Promise<Record<string, string | null | undefined>> {
  fs.mkdirSync(dir, { recursive: true });
  writeBenchStack(dir, th, cfg);
  const e: NodeJS.ProcessEnv = { ...env, D8_AGENT_TOKEN: token, D8_LOG_LEVEL: 'warn' };
  delete e.D8_SSH_PRIVATE_KEY;
  delete e.D8_SSH_KEY_PATH;
  const args = [path.join(REPO, 'bin', 'd8.js'), 'up', '--stack', STACK, '--dir', dir, '--engine', 'direct', '--force', '--json'];
  return async () => {
    const r = await run(process.execPath, args, { cwd: dir, env: e });
    const parsed = z.array(DeployResultSchema).safeParse((() => { try { return JSON.parse(r.stdout) as unknown; } catch { return null; } })());
    if (r.code !== 0 || !parsed.success) {
      throw new Error(`d8 up exited ${r.code}${parsed.success ? '' : ' without its JSON result'}:\n${r.stderr.trim().split('\n').slice(-15).join('\n')}`);
    }
    const bad = parsed.data.filter((x) => x.status !== 'deployed' || x.strategy !== 'venv');
    if (bad.length) throw new Error(`d8 up: ${bad.map((x) => `${x.slave} ${x.status} (${x.strategy}): ${x.error}`).join('; ')}`);
    return Object.fromEntries(parsed.data.map((x) => [x.slave, x.tlsFingerprint]));
  };
}

const YARDSTICK = 'Ansible, tuned (pipelining, ControlPersist, one archive; forks 4)';

export async function pushRows(o: {
  th: TestHosts; work: string; cfg: FleetConfig; bundle: BundleInfo; env: NodeJS.ProcessEnv; runs: number;
  timed: (fn: () => Promise<void>) => Promise<number>; say: (s: string) => void;
  /** The direct deployer's push of every slave of `cfg`; resolves with the fingerprints it reported. */
  direct: () => Promise<Record<string, string | null | undefined>>;
}): Promise<{ rows: BenchRow[]; provider: string }> {
  const { th, work, cfg, bundle, env, timed, say } = o;
  const token = cfg.agentToken!;
  const fmt = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  const why = (err: unknown): string => (err instanceof Error ? err.message : String(err));
  let provider = '';
  const peers: Peer[] = [];
  const failed = new Map<string, string>();
  /** A way that cannot be set up keeps its place in the table, with the reason. */
  const setUp = async (what: string, target: number | undefined, make: () => Omit<Peer, 'what' | 'target'>): Promise<void> => {
    const p: Peer = { what, target, push: () => Promise.resolve(), check: () => Promise.resolve() };
    peers.push(p);
    try {
      Object.assign(p, make());
      await p.push();
      await p.check();
    } catch (err) {
      say(`${what}: FAILED: ${why(err)}`);
      failed.set(what, why(err));
    }
  };
  const runs = new Map<Peer, number[]>();
  const cpu = new Map<Peer, number[]>();
  try {
    for (const flavour of ['defaults', 'tuned'] as const) {
      const what = flavour === 'defaults' ? 'Ansible, defaults (forks 4)' : YARDSTICK;
      await setUp(what, undefined, () => {
        const a = ansiblePeer({ flavour, dir: path.join(work, `ansible-${flavour}`), th, cfg, bundle, token });
        let fps: Record<string, string> = {};
        return { push: async () => { fps = await a.push(); }, check: () => checkAgents(`ansible (${flavour})`, cfg, bundle, fps), close: () => a.close() };
      });
    }
    await setUp('pulumi up', 0.6, () => {
      const p = pulumiPeer({ dir: path.join(work, 'pulumi'), th, cfg, bundle, token, env });
      provider = p.provider;
      let created = false;
      return {
        push: async () => { if (created) await p.push(); else { created = true; await p.create(); } },
        check: async () => checkAgents('pulumi up', cfg, bundle, await p.fingerprints()),
      };
    });
    await setUp('d8 up --engine direct --force (the CLI)', 0.3, () => {
      const up = d8Up(path.join(work, 'd8-up'), th, cfg, env, token);
      let fps: Record<string, string | null | undefined> = {};
      return { push: async () => { fps = await up(); }, check: () => checkAgents('d8 up --engine direct', cfg, bundle, fps) };
    });
    await setUp('the direct deployer in-process (the daemon\'s redeploy)', undefined, () => {
      let fps: Record<string, string | null | undefined> = {};
      return { push: async () => { fps = await o.direct(); }, check: () => checkAgents('the direct deployer', cfg, bundle, fps) };
    });

    for (const p of peers) { runs.set(p, []); cpu.set(p, []); }
    for (let i = 0; i < o.runs; i++) {
      for (const p of peers) {
        if (failed.has(p.what)) continue;
        try {
          const c = machineCpuMs();
          const ms = await timed(() => p.push());
          const used = machineCpuMs() - c;
          await p.check();
          runs.get(p)!.push(ms);
          cpu.get(p)!.push(used);
          say(`push #${i + 1}: ${p.what}: ${fmt(ms)} (machine CPU ${fmt(used)})`);
        } catch (err) {
          say(`${p.what}: FAILED: ${why(err)}`);
          failed.set(p.what, why(err));
        }
      }
    }
  } finally {
    for (const p of peers) p.close?.();
  }

  const rows: BenchRow[] = [];
  const row = (what: string) => `${what}, same push to 4 hosts`;
  const yard = peers.find((p) => p.what === YARDSTICK && !failed.has(p.what));
  const base = yard ? median(runs.get(yard)!) : null;
  for (const p of peers) {
    const target = p.target ? `≤ ${p.target} × tuned Ansible` : '-';
    const reason = failed.get(p.what);
    if (reason) {
      rows.push({ what: row(p.what), runs: [], target, pass: null, failed: reason });
      continue;
    }
    const ratio = base === null ? null : median(runs.get(p)!) / base;
    const note = `${p === yard ? 'the yardstick' : ratio === null ? 'no tuned Ansible to compare with' : `${ratio.toFixed(2)} × tuned Ansible`}; machine CPU ${fmt(median(cpu.get(p)!))}`;
    rows.push({ what: row(p.what), runs: runs.get(p)!, target, note, pass: p.target && ratio !== null ? ratio <= p.target : null });
  }
  return { rows, provider };
}
