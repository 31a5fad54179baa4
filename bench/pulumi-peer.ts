/**
 * bench:deploy's `pulumi up` row: the Pulumi CLI of the engine tier (scripts/pulumi-toolchain.sh:
 * built from Go modules, with the real pulumi-command provider when one is installed, else the D8
 * stand-in) running THIS checkout's program (dist/ through infra/index.js, in a throwaway project
 * copy) on a throwaway file backend, for the same 4 slaves, ports and prebuilt bundle (D8_BUNDLE_DIR)
 * as the other rows. One push is what a user runs to redeploy a release: `pulumi up --yes
 * --skip-preview` with every slave's bundle copy and install replaced (they are replaced with every
 * new release; `d8 up --engine pulumi` forces the same with --force, one slave at a time).
 */
import { spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import YAML from 'yaml';
import { z } from 'zod';
import type { BundleInfo } from '../agent/bundle/build';
import { InstallResultSchema } from '../core/install-result';
import type { FleetConfig } from '../core/stack-config';
import { slaveUrns } from '../infra/urns';
import { REPO, type TestHosts } from '../scripts/test-hosts/hosts';
import { run } from './bench-util';

/** The stack of the push rows that run a CLI (`pulumi up`, `d8 up`): Pulumi.bench.yaml. */
export const STACK = 'bench';
const SCRIPT = path.join(REPO, 'scripts', 'pulumi-toolchain.sh');

const ToolchainEnvSchema = z.object({ binDir: z.string().min(1), env: z.record(z.string()) });
const OutputsSchema = z.object({ installs: z.record(z.unknown()) });

export interface PulumiPeer {
  /** "real v1.2.1" or "D8 stand-in": which command provider the toolchain holds. */
  provider: string;
  /** The stack's first `pulumi up` (creates every slave's resources). */
  create(): Promise<void>;
  /** One forced redeploy of every slave. */
  push(): Promise<void>;
  /** Each slave's certificate fingerprint, from the install.sh results in the stack's outputs. */
  fingerprints(): Promise<Record<string, string | null>>;
}

function script(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim() };
}

/** Pulumi.bench.yaml in `dir`: `cfg`'s slaves, key and install settings. */
export function writeBenchStack(dir: string, th: TestHosts, cfg: FleetConfig): void {
  fs.writeFileSync(path.join(dir, `Pulumi.${STACK}.yaml`), YAML.stringify({
    config: {
      'd8:sshKeyPath': th.key,
      'd8:installAttempts': cfg.installAttempts,
      'd8:installDelaySeconds': cfg.installDelaySeconds,
      'd8:baseImage': cfg.baseImage,
      'd8:slaves': cfg.slaves.map((s) => ({
        name: s.name, host: s.host, user: s.user, sshPort: s.sshPort, agentPort: s.agentPort, strategies: s.strategies, hostKey: s.hostKey,
      })),
    },
  }));
}

/**
 * The toolchain, a project copy in `dir` and its stack file for `cfg`'s slaves. Throws (the row
 * cannot run) when the toolchain is incomplete: .ci/run builds it before the tests.
 */
export function pulumiPeer(o: { dir: string; th: TestHosts; cfg: FleetConfig; bundle: BundleInfo; token: string; env: NodeJS.ProcessEnv }): PulumiPeer {
  const check = script('check');
  if (check.status !== 0) throw new Error(`the Pulumi toolchain is incomplete (scripts/pulumi-toolchain.sh build): ${check.out.replace(/\n/g, '; ')}`);
  const envJson = script('env', '--json');
  if (envJson.status !== 0) throw new Error(`scripts/pulumi-toolchain.sh env --json failed: ${envJson.out}`);
  const toolchain = ToolchainEnvSchema.parse(JSON.parse(envJson.out));
  const line = script('versions').out.split('\n').find((l) => l.trim().startsWith('pulumi-resource-command')) ?? '';
  const provider = /STAND-IN/.test(line) ? 'D8 stand-in' : `real ${line.trim().split(/\s+/)[1] ?? '?'}`;

  const { dir, th, cfg, bundle } = o;
  const project = path.join(dir, 'project');
  fs.mkdirSync(path.join(project, 'infra'), { recursive: true });
  for (const f of ['Pulumi.yaml', 'package.json', path.join('infra', 'index.js')]) fs.copyFileSync(path.join(REPO, f), path.join(project, f));
  for (const d of ['dist', 'node_modules']) fs.symlinkSync(path.join(REPO, d), path.join(project, d));
  writeBenchStack(project, th, cfg);
  fs.mkdirSync(path.join(dir, 'backend'));
  fs.mkdirSync(path.join(dir, 'tmp'));
  const env: NodeJS.ProcessEnv = {
    ...o.env, ...toolchain.env,
    PATH: [toolchain.binDir, process.env.PATH ?? ''].join(path.delimiter),
    PULUMI_BACKEND_URL: `file://${path.join(dir, 'backend')}`,
    PULUMI_CONFIG_PASSPHRASE: 'd8-bench-passphrase',
    D8_AGENT_TOKEN: o.token,
    D8_BUNDLE_DIR: bundle.dir,
    // The program stages the bundle copies there (infra/bundle-stage.ts).
    TMPDIR: path.join(dir, 'tmp'),
    D8_LOG_LEVEL: 'warn',
  };
  delete env.D8_SSH_PRIVATE_KEY;
  delete env.D8_SSH_KEY_PATH;
  const pulumi = async (...args: string[]): Promise<string> => {
    const r = await run(path.join(toolchain.binDir, 'pulumi'), [...args, '--stack', STACK, '--non-interactive'], { cwd: project, env });
    if (r.code !== 0) throw new Error(`pulumi ${args[0]} exited ${r.code}:\n${(r.stdout + r.stderr).trim().split('\n').slice(-25).join('\n')}`);
    return r.stdout;
  };
  const fingerprints = async (): Promise<Record<string, string | null>> => {
    const outputs = OutputsSchema.parse(JSON.parse(await pulumi('stack', 'output', '--json', '--show-secrets')));
    const fps: Record<string, string | null> = {};
    for (const s of cfg.slaves) {
      const r = InstallResultSchema.safeParse(outputs.installs[s.name]);
      if (!r.success || !r.data.ok) throw new Error(`pulumi up: the stack's installs output has no successful install.sh result for ${s.name}`);
      fps[s.name] = r.data.tls_fingerprint ?? null;
    }
    return fps;
  };
  const replace = cfg.slaves.flatMap((s) => {
    const u = slaveUrns(STACK, s.name, { local: false });
    return ['--replace', u.bundle, '--replace', u.install];
  });
  // No destroy at the end: the backend goes with `dir`, and the bench uninstalls the hosts' agents.
  return {
    provider,
    fingerprints,
    async create() {
      const init = await run(path.join(toolchain.binDir, 'pulumi'), ['stack', 'init', STACK, '--non-interactive'], { cwd: project, env });
      if (init.code !== 0) throw new Error(`pulumi stack init ${STACK} exited ${init.code}: ${(init.stdout + init.stderr).trim()}`);
      await pulumi('up', '--yes', '--skip-preview');
    },
    async push() {
      const out = await pulumi('up', '--yes', '--skip-preview', ...replace);
      // Each slave's bundle copy and install, or the figure is not a redeploy.
      const n = Number(/(\d+) replaced/.exec(out)?.[1] ?? 0);
      if (n !== replace.length / 2) throw new Error(`pulumi up replaced ${n} resources, not ${replace.length / 2}:\n${out.trim().split('\n').slice(-12).join('\n')}`);
    },
  };
}
