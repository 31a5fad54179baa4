/** Stack files as `pulumi config set` rewrites them: scalars stored as strings are read like the program reads them. */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { readStackFile, resolveFleetConfig } from '../../core/stack-config';

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
