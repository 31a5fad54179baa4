/**
 * What a hosts-tier file shares across its concurrent tests: a temp dir with the test SSH key and a
 * loopback Node.js mirror of this machine's node, made once on first use (concurrent tests may start
 * before a beforeAll hook has run), and the container hosts to remove at the end.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { nodeMirrorDir, serveNodeMirror, type NodeMirrorDir, type NodeMirrorServer } from '../../support/node-mirror';
import { REPO } from '../../system/support/hosts';
import { makeSshKey, removeContainerHost, type ContainerHost } from '../../../scripts/test-hosts/containers';

export interface HostsSetup { dir: string; key: string; mirror: NodeMirrorDir; server: NodeMirrorServer }

export class HostsFixture {
  private ready: Promise<HostsSetup> | null = null;
  private readonly hosts: ContainerHost[] = [];

  constructor(private readonly prefix: string) {}

  setup(): Promise<HostsSetup> {
    return (this.ready ??= (async () => {
      if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: build first (npm run build)');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), this.prefix));
      const mirror = nodeMirrorDir();
      return { dir, key: makeSshKey(dir), mirror, server: await serveNodeMirror(mirror.root) };
    })());
  }

  /** Removed by cleanup(). */
  track(h: ContainerHost): ContainerHost {
    this.hosts.push(h);
    return h;
  }

  async cleanup(): Promise<void> {
    for (const h of this.hosts) removeContainerHost(h);
    if (!this.ready) return;
    const { dir, server } = await this.ready;
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
