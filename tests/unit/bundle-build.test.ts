/** Building the agent bundle while other processes deploy from the same output root. */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { buildBundle, BUNDLE_HASH_FILE } from '../../agent/bundle/build';
import { repoRoot } from '../../core/paths';
import type { VersionInfo } from '../../core/version-info';

jest.setTimeout(60_000);

const info: VersionInfo = { branch: 'main', commit: 'a'.repeat(40), version: '0.0.0', deployed_at: '2026-01-01T00:00:00.000Z', dirty: false };

describe('buildBundle', () => {
  let outRoot: string;
  beforeEach(() => { outRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-bundles-')); });
  afterEach(() => fs.rmSync(outRoot, { recursive: true, force: true }));

  it('a rebuild of the same release leaves the existing bundle directory in place (a deploy may be reading it)', async () => {
    const first = await buildBundle({ repoDir: repoRoot(), outRoot, versionInfo: info });
    const inode = fs.statSync(first.dir).ino;
    const reader = fs.openSync(path.join(first.dir, 'agent.js'), 'r');
    try {
      const again = await Promise.all([1, 2, 3].map(() => buildBundle({ repoDir: repoRoot(), outRoot, versionInfo: { ...info, deployed_at: new Date().toISOString() } })));
      for (const b of again) {
        expect(b.dir).toBe(first.dir);
        expect(b.hash).toBe(first.hash);
      }
      expect(fs.statSync(first.dir).ino).toBe(inode);
      for (const f of first.files) expect(fs.existsSync(path.join(first.dir, f))).toBe(true);
      expect(fs.readFileSync(path.join(first.dir, BUNDLE_HASH_FILE), 'utf8').trim()).toBe(first.hash);
      expect(fs.readdirSync(outRoot).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    } finally {
      fs.closeSync(reader);
    }
  });

  it('another release gets its own directory', async () => {
    const a = await buildBundle({ repoDir: repoRoot(), outRoot, versionInfo: info });
    const b = await buildBundle({ repoDir: repoRoot(), outRoot, versionInfo: { ...info, commit: 'b'.repeat(40) } });
    expect(b.dir).not.toBe(a.dir);
    expect(fs.existsSync(path.join(a.dir, BUNDLE_HASH_FILE))).toBe(true);
  });
});
