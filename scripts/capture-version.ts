/**
 * Writes version_info.json from git. Usage: node dist/scripts/capture-version.js [--output FILE] [--keep-existing]
 * (the same as `npx d8 version capture`).
 */
import path from 'path';
import { captureToFile } from '../core/version-info';

export function runCaptureVersion(argv: string[], repoDir: string): number {
  const output = argv.includes('--output') ? argv[argv.indexOf('--output') + 1] : undefined;
  const keepExisting = argv.includes('--keep-existing');
  try {
    const r = captureToFile({ repoDir, output: output ? path.resolve(output) : undefined, keepExisting });
    const note = r.kept ? ' (not a git checkout: kept the existing file)' : '';
    process.stdout.write(`${r.file}: ${r.info.branch}@${r.info.commit}${r.info.dirty ? ' (dirty)' : ''}${note}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`capture-version: ${(err as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  process.exitCode = runCaptureVersion(process.argv.slice(2), process.cwd());
}
