/** A failed `pulumi up`'s text summarized to its Diagnostics (what the user must fix), not its tail. */
import { pulumiErrorSummary } from '../../master/deploy/pulumi/pulumi-deployer';

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
