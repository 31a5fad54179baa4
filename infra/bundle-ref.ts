import type { BundleInfo } from '../agent/bundle/build';

/** What the Pulumi program needs of a built agent bundle (agent/bundle/build.ts). */
export type BundleRef = Pick<BundleInfo, 'dir' | 'hash' | 'versionInfo'>;
