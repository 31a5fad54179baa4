/** Releases kept in D8_HOME: the newest three plus each slave's last good and running one; a tampered copy is refused. */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { buildBundle, type BundleInfo } from '../../agent/bundle/build';
import { repoRoot } from '../../core/paths';
import { createLogger } from '../../core/logger';
import { ReleaseArchive, ReleaseArchiveError } from '../../master/rollout/release-archive';
import { useTempStore } from '../support/temp-store';

jest.setTimeout(60_000);

const commit = (n: number) => String(n).repeat(40);

describe('ReleaseArchive', () => {
  const store = useTempStore();
  let out: string;
  const bundles: BundleInfo[] = [];

  beforeAll(async () => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-releases-'));
    for (let n = 1; n <= 5; n++) {
      bundles.push(await buildBundle({ repoDir: repoRoot(), outRoot: path.join(out, 'build'), versionInfo: { branch: 'main', commit: commit(n), version: '1.0.0', deployed_at: new Date().toISOString(), dirty: false } }));
    }
  });
  afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

  const archive = () => new ReleaseArchive({ stack: 't', store: store(), home: path.join(out, `home-${Date.now()}`), logger: createLogger({ name: 'test', level: 'silent' }) });

  it('keeps the newest three and a slave\'s last good release; removes the rest from disk', () => {
    const a = archive();
    a.keep(bundles[0]);
    store().releases.markGood('t', 'pc', commit(1));
    for (const b of bundles.slice(1)) a.keep(b);
    const kept = store().releases.list('t').map((r) => r.commit).sort();
    expect(kept).toEqual([commit(1), commit(3), commit(4), commit(5)]);
    expect(fs.readdirSync(a.root).filter((n) => !n.startsWith('.')).sort()).toEqual([bundles[0], bundles[2], bundles[3], bundles[4]].map((b) => b.hash.slice(0, 16)).sort());
    const old = a.bundleOf(commit(1))!;
    expect(old.versionInfo.commit).toBe(commit(1));
    expect(old.hash).toBe(bundles[0].hash);
    expect(a.bundleOf(commit(2))).toBeNull();
  });

  it('refuses a kept release whose files no longer match its hash', () => {
    const a = archive();
    a.keep(bundles[0]);
    fs.appendFileSync(path.join(a.bundleOf(commit(1))!.dir, 'install.sh'), '\n# edited\n');
    expect(() => a.bundleOf(commit(1))).toThrow(ReleaseArchiveError);
  });

  it('does not keep a bundle built from a dirty tree (its commit does not name its code)', () => {
    const a = archive();
    a.keep({ ...bundles[0], versionInfo: { ...bundles[0].versionInfo, dirty: true } });
    expect(store().releases.list('t')).toEqual([]);
  });
});
