/**
 * What a host is, as the probe (master/deploy/probe/) learns it over SSH before an install, and the
 * verdict judged from it: per strategy "will work" or why not, and which Node.js runtime the host
 * needs. `d8 probe --json` prints exactly these shapes.
 */
import { z } from 'zod';
import { StrategySchema } from './protocol';
import { RuntimeArchSchema } from './node-runtime';

export const LibcSchema = z.object({
  kind: z.enum(['glibc', 'musl', 'unknown']),
  /** "2.36" for glibc, "1.2.4" for musl, null when unknown. */
  version: z.string().nullable(),
  /** What was seen (getconf / ldd output), for messages. */
  evidence: z.string(),
});

export const HostFactsSchema = z.object({
  user: z.string(),
  uid: z.number().int().nullable(),
  home: z.string(),
  os: z.string().nullable(),
  /** `uname -s`, `uname -m`, `getconf LONG_BIT` (userland width). */
  kernel: z.string(),
  machine: z.string(),
  longBit: z.number().int().nullable(),
  libc: LibcSchema,
  /** Free space in $HOME, KiB (df -Pk). */
  freeKiB: z.number().int().nullable(),
  init: z.object({
    systemdSystem: z.boolean(),
    systemdUser: z.boolean(),
    linger: z.enum(['yes', 'no', 'unknown']),
    sudo: z.boolean(),
  }),
  docker: z.object({
    path: z.string().nullable(),
    /** The engine's version when `docker info` works for this user. */
    serverVersion: z.string().nullable(),
    /** Why not, when installed but not usable. */
    error: z.string().nullable(),
  }),
  python: z.object({
    path: z.string().nullable(),
    version: z.string().nullable(),
    /** `python3 -m venv` can work (venv and ensurepip import). */
    venv: z.boolean(),
  }),
  node: z.object({
    path: z.string().nullable(),
    version: z.string().nullable(),
    /** Set when a `node` is on PATH (or shadowed there) but does not run. */
    error: z.string().nullable(),
  }),
  tools: z.object({
    curl: z.boolean(), wget: z.boolean(), tar: z.boolean(), gzip: z.boolean(), xz: z.boolean(),
    sha256: z.enum(['sha256sum', 'shasum', 'openssl', 'python3', 'none']),
  }),
});
export type HostFacts = z.infer<typeof HostFactsSchema>;

export const StrategyVerdictSchema = z.object({
  strategy: StrategySchema,
  ok: z.boolean(),
  /** "will work: …" details, or the reason it cannot. */
  reason: z.string(),
});
export type StrategyVerdict = z.infer<typeof StrategyVerdictSchema>;

export const RuntimeVerdictSchema = z.discriminatedUnion('need', [
  /** The host's own node is new enough. */
  z.object({ need: z.literal('host'), node: z.string(), version: z.string() }),
  /** The master pushes its pinned runtime for this arch. */
  z.object({ need: z.literal('push'), arch: RuntimeArchSchema, why: z.string() }),
  /** No node and none we can ship: the venv and native strategies cannot work. */
  z.object({ need: z.literal('refused'), reason: z.string() }),
]);
export type RuntimeVerdict = z.infer<typeof RuntimeVerdictSchema>;

export const HostVerdictSchema = z.object({
  runtime: RuntimeVerdictSchema,
  strategies: z.array(StrategyVerdictSchema),
  /** One line: what the host is and what will run the agent. */
  summary: z.string(),
});
export type HostVerdict = z.infer<typeof HostVerdictSchema>;

export const ProbeReportSchema = z.object({
  slave: z.string(),
  where: z.string(),
  facts: HostFactsSchema,
  verdict: HostVerdictSchema,
});
export type ProbeReport = z.infer<typeof ProbeReportSchema>;

/**
 * From the master's pulumi deployer to the Pulumi program, for one `pulumi up`: the slaves its probe
 * found without a usable node, and the runtime arch each needs (`{"vps":"arm64"}`). An environment
 * variable, not stack config: it is a fact about the host at deploy time, not desired state, so it
 * must neither be written into the user's Pulumi.<stack>.yaml nor outlive the run.
 */
export const PROBED_RUNTIMES_ENV = 'D8_PROBED_RUNTIMES';
export const ProbedRuntimesSchema = z.record(z.string(), RuntimeArchSchema);
export type ProbedRuntimes = z.infer<typeof ProbedRuntimesSchema>;
