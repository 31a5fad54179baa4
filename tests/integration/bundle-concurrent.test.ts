/**
 * Several processes building the agent bundle of one tree at once (six `d8 up` from one checkout, or
 * the CLI while the daemon deploys) all succeed, and the bundle they share stays whole: a build that
 * finds a complete bundle of the same hash keeps it rather than deleting it under the others.
 */
import { spawn } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { BUNDLE_HASH_FILE, bundleHash } from '../../agent/bundle/build';

jest.setTimeout(120_000);

const REPO = path.resolve(__dirname, '..', '..');
const BUILD = path.join(REPO, 'dist', 'agent', 'bundle', 'build.js');

function buildInChild(outRoot: string): Promise<string> {
  const script = `require(${JSON.stringify(BUILD)}).buildBundle({ repoDir: ${JSON.stringify(REPO)}, outRoot: process.argv[1] })
    .then((b) => process.stdout.write('ok ' + b.dir), (e) => { process.stdout.write('ERR ' + e.message); process.exitCode = 1; });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, outRoot], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', reject);
    child.on('close', () => resolve(out.trim()));
  });
}

describe('concurrent bundle builds of one tree', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-bundle-race-'));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('all succeed, and the shared bundle is complete', async () => {
    if (!fs.existsSync(BUILD)) throw new Error('dist/ is missing: build first (npm run build)');
    for (let round = 0; round < 3; round++) {
      const outRoot = path.join(root, `r${round}`);
      const results = await Promise.all(Array.from({ length: 8 }, () => buildInChild(outRoot)));
      expect(results.filter((r) => !r.startsWith('ok '))).toEqual([]);
      const dirs = new Set(results.map((r) => r.slice(3)));
      expect(dirs.size).toBe(1);
      const dir = [...dirs][0];
      expect(fs.readFileSync(path.join(dir, BUNDLE_HASH_FILE), 'utf8').trim()).toBe(bundleHash(dir));
      expect(fs.readdirSync(outRoot).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    }
  });
});
