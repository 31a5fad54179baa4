/**
 * `npm ci` then `npm prune --omit=dev` must leave a master that runs and deploys: every package the
 * runtime code loads (the import graph of dist/ from bin/d8.js and the Pulumi program's infra/index.js,
 * lazy imports included) is a `dependencies` entry, never a devDependency. Computed from the compiled
 * output, so a new import of a dev-only package fails here.
 */
import fs from 'fs';
import { builtinModules } from 'module';
import path from 'path';

const REPO = path.resolve(__dirname, '..', '..');
/** What bin/d8.js and infra/index.js load (by a computed path, so they are listed here and checked below). */
const LAUNCHERS: ReadonlyArray<readonly [string, string]> = [['bin/d8.js', 'dist/cli/main.js'], ['infra/index.js', 'dist/infra/program.js']];
const ENTRIES = [...LAUNCHERS.flatMap(([l, d]) => [l, d])].map((f) => path.join(REPO, f));
const BUILTIN = new Set(builtinModules);

function packageOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function resolveLocal(from: string, spec: string): string | null {
  const base = path.resolve(path.dirname(from), spec);
  for (const f of [base, `${base}.js`, path.join(base, 'index.js')]) {
    if (fs.existsSync(f) && fs.statSync(f).isFile()) return f;
  }
  return null;
}

/** Every bare package the files reachable from `entries` require, with one file that requires it. */
function runtimePackages(entries: string[]): { packages: Map<string, string>; files: number; unresolved: string[] } {
  const packages = new Map<string, string>();
  const unresolved: string[] = [];
  const seen = new Set<string>();
  const todo = [...entries];
  while (todo.length) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const src = fs.readFileSync(file, 'utf8');
    // tsc's CommonJS output: static imports and `await import()` both become require("…").
    for (const m of src.matchAll(/\brequire\(\s*(["'])([^"']+)\1\s*\)/g)) {
      const spec = m[2];
      if (spec.startsWith('.') || spec.startsWith('/')) {
        const next = resolveLocal(file, spec);
        if (next) todo.push(next); else unresolved.push(`${path.relative(REPO, file)}: ${spec}`);
      } else if (!spec.startsWith('node:') && !BUILTIN.has(spec) && !BUILTIN.has(spec.split('/')[0])) {
        if (!packages.has(packageOf(spec))) packages.set(packageOf(spec), path.relative(REPO, file));
      }
    }
  }
  return { packages, files: seen.size, unresolved };
}

describe('runtime dependencies', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const built = fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'));

  (built ? it : it.skip)('every package the compiled runtime code requires is in dependencies', () => {
    for (const [launcher, target] of LAUNCHERS) {
      const parts = target.split('/').map((p) => `'${p}'`).join(', ');
      expect({ launcher, loads: fs.readFileSync(path.join(REPO, launcher), 'utf8').includes(parts) }).toEqual({ launcher, loads: true });
    }
    const { packages, files, unresolved } = runtimePackages(ENTRIES);
    expect(unresolved).toEqual([]);
    // The graph reaches the daemon, the deployers, the bundle builder and the Pulumi program.
    expect(files).toBeGreaterThan(100);
    for (const f of ['dist/master/daemon/daemon.js', 'dist/agent/bundle/build.js', 'dist/infra/program.js', 'dist/master/deploy/direct/index.js']) {
      expect({ f, reached: runtimePackagesReach(f) }).toEqual({ f, reached: true });
    }
    const notProd = [...packages].filter(([name]) => !(name in pkg.dependencies)).map(([name, by]) => `${name} (required by ${by}${name in pkg.devDependencies ? ', a devDependency' : ''})`);
    expect(notProd).toEqual([]);
    expect(packages.has('esbuild')).toBe(true);
  });

  function runtimePackagesReach(rel: string): boolean {
    const target = path.join(REPO, rel);
    const seen = new Set<string>();
    const todo = [...ENTRIES];
    while (todo.length) {
      const file = todo.pop()!;
      if (file === target) return true;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/\brequire\(\s*(["'])(\.[^"']*)\1\s*\)/g)) {
        const next = resolveLocal(file, m[2]);
        if (next) todo.push(next);
      }
    }
    return false;
  }
});
