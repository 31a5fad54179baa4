/**
 * How the master's pulumi deployer tells the Pulumi program which release to install (issue 14):
 * environment variables, like PROBED_RUNTIMES_ENV, because they are facts of one run (the release a
 * rollout or a rollback deploys), not desired state for the user's Pulumi.<stack>.yaml.
 *
 *   D8_BUNDLE_DIR      the fleet's bundle (the master's release); without it the program builds one
 *   D8_SLAVE_BUNDLES   `{ "<slave>": "<bundle dir>" }`: these slaves get a kept release instead
 */
import { z } from 'zod';

export const BUNDLE_DIR_ENV = 'D8_BUNDLE_DIR';
export const SLAVE_BUNDLES_ENV = 'D8_SLAVE_BUNDLES';
export const SlaveBundleDirsSchema = z.record(z.string().min(1), z.string().min(1));
export type SlaveBundleDirs = z.infer<typeof SlaveBundleDirsSchema>;
