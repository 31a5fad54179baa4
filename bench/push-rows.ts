/**
 * bench:deploy's push rows: the same forced redeploy (bundle to ~/.d8-agent/bundles/<hash16>,
 * install.sh, the agents checked over HTTPS pinned to the certificate each install reported) of the
 * same 4 slaves, each way in turn in every run so a drift of the machine's speed hits all alike:
 *   Ansible with its defaults, Ansible tuned (the yardstick), `pulumi up` of this program, and the
 *   deployer `d8 up --engine direct` runs. Each is warmed up once (control sockets, the stack's
 *   first create), untimed. A way that fails gets a row saying why; the others go on.
 */
import path from 'path';
import type { BundleInfo } from '../agent/bundle/build';
import type { FleetConfig } from '../core/stack-config';
import type { TestHosts } from '../scripts/test-hosts/hosts';
import { ansiblePeer, checkAgents } from './ansible-peer';
import { median } from './bench-util';
import { pulumiPeer } from './pulumi-peer';
import type { BenchRow } from './runtime-rows';

/** One way of doing the push: `push` is timed, `check` is not. `target`: at most this × the yardstick. */
interface Peer { what: string; target?: number; push(): Promise<void>; check(): Promise<void> }

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
  const setUp = async (what: string, make: () => Peer): Promise<void> => {
    try {
      const p = make();
      await p.push();
      await p.check();
      peers.push(p);
    } catch (err) {
      say(`${what}: FAILED: ${why(err)}`);
      failed.set(what, why(err));
    }
  };
  for (const flavour of ['defaults', 'tuned'] as const) {
    const what = flavour === 'defaults' ? 'Ansible, defaults (forks 4)' : YARDSTICK;
    await setUp(what, () => {
      const a = ansiblePeer({ flavour, dir: path.join(work, `ansible-${flavour}`), th, cfg, bundle, token });
      let fps: Record<string, string> = {};
      return { what, push: async () => { fps = await a.push(); }, check: () => checkAgents(`ansible (${flavour})`, cfg, bundle, fps) };
    });
  }
  await setUp('pulumi up', () => {
    const p = pulumiPeer({ dir: path.join(work, 'pulumi'), th, cfg, bundle, token, env });
    provider = p.provider;
    let created = false;
    return {
      what: `pulumi up (command provider: ${p.provider})`, target: 0.6,
      push: async () => { if (created) await p.push(); else { created = true; await p.create(); } },
      check: async () => checkAgents('pulumi up', cfg, bundle, await p.fingerprints()),
    };
  });
  await setUp('d8 up --engine direct', () => {
    let fps: Record<string, string | null | undefined> = {};
    return { what: 'd8 up --engine direct (its deployer)', target: 0.3, push: async () => { fps = await o.direct(); }, check: () => checkAgents('d8 up --engine direct', cfg, bundle, fps) };
  });

  const runs = new Map<Peer, number[]>(peers.map((p) => [p, []]));
  for (let i = 0; i < o.runs; i++) {
    for (const p of peers) {
      if (failed.has(p.what)) continue;
      try {
        const ms = await timed(() => p.push());
        await p.check();
        runs.get(p)!.push(ms);
        say(`push #${i + 1}: ${p.what}: ${fmt(ms)}`);
      } catch (err) {
        say(`${p.what}: FAILED: ${why(err)}`);
        failed.set(p.what, why(err));
      }
    }
  }

  const rows: BenchRow[] = [];
  const row = (what: string) => `${what}, same push to 4 hosts`;
  for (const [what, reason] of failed) if (!peers.some((p) => p.what === what)) rows.push({ what: row(what), runs: [], target: '-', pass: null, failed: reason });
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
    const note = p === yard ? 'the yardstick' : ratio === null ? 'no tuned Ansible to compare with' : `${ratio.toFixed(2)} × tuned Ansible`;
    rows.push({ what: row(p.what), runs: runs.get(p)!, target, note, pass: p.target && ratio !== null ? ratio <= p.target : null });
  }
  return { rows, provider };
}
