/**
 * The Node.js runtime the master ships to hosts without a usable `node`: the one pinned version,
 * the architectures it is shipped for, and how its official tarballs are named. Everything that
 * fetches, caches, pushes or judges a runtime reads it from here.
 */
import { z } from 'zod';

/** Node 22 LTS ("Jod"). Official linux builds need glibc >= 2.28. */
export const PINNED_NODE_VERSION = 'v22.22.0';
export const DEFAULT_NODE_DIST_URL = 'https://nodejs.org/dist';
/** The oldest node the agent bundle runs on (agent/bundle/build.ts bundles for node18). */
export const AGENT_MIN_NODE_MAJOR = 18;
/** The floor of the official linux builds of the pinned version. */
export const NODE_GLIBC_FLOOR = { major: 2, minor: 28 } as const;

export const RUNTIME_ARCHES = ['x64', 'arm64', 'armv7l'] as const;
export const RuntimeArchSchema = z.enum(RUNTIME_ARCHES);
export type RuntimeArch = z.infer<typeof RuntimeArchSchema>;

export const NodeVersionSchema = z.string().regex(/^v\d+\.\d+\.\d+$/, 'must be a Node.js release like v22.22.0');

/** Which runtime a stack ships, and from where. */
export interface RuntimeSource {
  version: string;
  distUrl: string;
}

export function runtimeSource(c: { nodeVersion?: string; nodeDistUrl?: string }): RuntimeSource {
  return { version: c.nodeVersion ?? PINNED_NODE_VERSION, distUrl: (c.nodeDistUrl ?? DEFAULT_NODE_DIST_URL).replace(/\/+$/, '') };
}

/** `node-v22.22.0-linux-arm64`: the tarball's top directory, and where it is unpacked on a host. */
export function runtimeName(version: string, arch: RuntimeArch): string {
  return `node-${version}-linux-${arch}`;
}

export function runtimeTarball(version: string, arch: RuntimeArch): string {
  return `${runtimeName(version, arch)}.tar.gz`;
}

/** Where runtimes are unpacked on a host, relative to the user's home (kept across redeploys). */
export const REMOTE_RUNTIME_ROOT = '.d8-agent/runtime';

export function nodeMajor(version: string): number | null {
  const m = /^v?(\d+)\./.exec(version.trim());
  return m ? Number(m[1]) : null;
}
