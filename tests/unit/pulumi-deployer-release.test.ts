/**
 * The pulumi deployer's release (issue 14): per-host mode installs a given bundle, so the coordinator
 * lets rollouts use it; the bundle without one is D8_BUNDLE_DIR (its real directory) or the checkout's.
 * Swarm mode has none: one service runs every node, so rollouts stay off there.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { buildBundle } from '../../agent/bundle/build';
import { createLogger } from '../../core/logger';
import { resolveFleetConfig } from '../../core/stack-config';
import { DeployCoordinator } from '../../master/deploy/coordinator';
import { PulumiDeployer } from '../../master/deploy/pulumi/pulumi-deployer';
import { openStore } from '../../master/store';

const logger = createLogger({ name: 'test', level: 'silent' });
const info = (commit: string) => ({ branch: 'main', commit, version: '0.0.0', deployed_at: new Date().toISOString(), dirty: false });

describe('the pulumi deployer and kept releases', () => {
  let root: string;
  beforeAll(() => { root = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-pulumi-release-')); });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('per-host mode: installs given bundles; its own bundle is D8_BUNDLE_DIR resolved to the real directory', async () => {
    const bundle = await buildBundle({ outRoot: path.join(root, 'b'), versionInfo: info('1'.repeat(40)) });
    const link = path.join(root, 'current');
    fs.symlinkSync(bundle.dir, link);
    const config = resolveFleetConfig({ agentToken: 'x'.repeat(40), slaves: [{ name: 'a', host: 'local' }] }, { stack: 's', env: {} });
    const d = new PulumiDeployer({ stack: 's', repoDir: root, config, logger, env: { D8_BUNDLE_DIR: link } });
    const got = await d.bundle!();
    expect(got).toMatchObject({ dir: bundle.dir, hash: bundle.hash });
    const store = openStore(path.join(root, 'master.db'));
    try {
      expect(new DeployCoordinator('s', d, store.deploys, logger).installsGivenBundles).toBe(true);
    } finally {
      store.close();
    }
  });

  it('swarm mode: no bundle of its own, so the coordinator says it cannot install a given one', () => {
    const config = resolveFleetConfig({ swarm: 'ssh://d8@manager.lan', agentToken: 'x'.repeat(40), slaves: [{ name: 'a', host: 'a.lan', user: 'd8' }] }, { stack: 'w', env: {} });
    const d = new PulumiDeployer({ stack: 'w', repoDir: root, config, logger });
    expect(d.bundle).toBeUndefined();
    const store = openStore(path.join(root, 'swarm.db'));
    try {
      expect(new DeployCoordinator('w', d, store.deploys, logger).installsGivenBundles).toBe(false);
    } finally {
      store.close();
    }
  });
});
