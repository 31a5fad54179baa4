import fs from 'fs';
import os from 'os';
import path from 'path';
import { fleetSecrets, fleetRedactor } from '../../core/fleet-secrets';
import { SlaveTokens } from '../../core/slave-tokens';
import type { FleetConfig } from '../../core/stack-config';

describe('fleetSecrets', () => {
  it("includes each slave's own recorded tokens, current and previous", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-fleet-secrets-'));
    try {
      const env = { D8_HOME: home };
      const current = 'slave-own-token-current-0123456789abcdef';
      const previous = 'slave-own-token-previous-0123456789abcdef';
      new SlaveTokens(path.join(home, 'tokens'), 'prod').write('box', { current, previous, installed: true });
      const config = { stack: 'prod', slaves: [{ name: 'box' }, { name: 'other' }] } as unknown as FleetConfig;
      expect(fleetSecrets(config, env)).toEqual(expect.arrayContaining([current, previous]));
      expect(fleetRedactor(config, env).text(`token ${current} and ${previous}`)).not.toMatch(/slave-own-token/);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('a fleetRedactor learns tokens recorded after it was made (a rotation by another process), and keeps the old ones', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-fleet-secrets-'));
    try {
      const env = { D8_HOME: home };
      const tokens = new SlaveTokens(path.join(home, 'tokens'), 'prod');
      const config = { stack: 'prod', slaves: [{ name: 'box' }] } as unknown as FleetConfig;
      const redactor = fleetRedactor(config, env);
      const first = 'slave-first-token-0123456789abcdefghij';
      const second = 'slave-second-token-0123456789abcdefghij';
      expect(redactor.text(first)).toBe(first);
      tokens.write('box', { current: first, previous: null, installed: true });
      expect(redactor.text(`a ${first}`)).toBe('a ***');
      tokens.write('box', { current: second, previous: null, installed: true });
      expect(redactor.with('other-secret-value').text(`${first} ${second}`)).toBe('*** ***');
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
