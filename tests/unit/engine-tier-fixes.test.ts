/** Fixes found by the real-engine tier (docs/engine-tier.md): stack files as pulumi rewrites them, pulumi error summaries. */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { readStackFile, resolveFleetConfig } from '../../core/stack-config';
import { pulumiErrorSummary } from '../../master/deploy/pulumi/pulumi-deployer';

describe('readStackFile', () => {
  it('reads top-level scalars that pulumi stored as strings like the program does', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-stackfile-'));
    try {
      const file = path.join(dir, 'Pulumi.x.yaml');
      fs.writeFileSync(file, [
        'config:',
        '  d8:installAttempts: "2"',
        '  d8:checkIntervalSeconds: "15"',
        '  d8:sshKeyPath: "123"',
        '  d8:slaves:',
        '    - {name: a, host: 127.0.0.2, user: u, agentPort: 7601}',
        'encryptionsalt: v1:abc',
      ].join('\n') + '\n');
      const raw = readStackFile(file);
      expect(raw).toMatchObject({ installAttempts: 2, checkIntervalSeconds: 15, sshKeyPath: '123' });
      const c = resolveFleetConfig(raw, { stack: 'x', env: {} });
      expect(c.installAttempts).toBe(2);
      fs.writeFileSync(file, 'config:\n  d8:installAttempts: "two"\n');
      expect(() => resolveFleetConfig(readStackFile(file), { stack: 'x', env: {} })).toThrow(/d8:installAttempts/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pulumiErrorSummary', () => {
  it('reports the Diagnostics section, not the outputs at the tail', () => {
    const text = [
      'code: 255', ' stdout: Updating (e2e):', ' -- command:remote:Command a-install deleting failed',
      'Diagnostics:', '  command:remote:Command (a-install):', '    error: Process exited with status 2', '    sh: 0: cannot open x/uninstall.sh: No such file',
      '', 'Outputs:', '    commit: "abc"', 'Resources:', '    8 unchanged', 'Duration: 2s',
    ].join('\n');
    const s = pulumiErrorSummary(text);
    expect(s).toContain('cannot open x/uninstall.sh');
    expect(s).not.toContain('8 unchanged');
    expect(pulumiErrorSummary('a\nb\nfailed for another reason\n')).toBe('a\nb\nfailed for another reason');
  });
});
