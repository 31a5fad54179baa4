/** core/slave-tokens.ts: which token the master presents to a slave's agent, and when. */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { SlaveTokenFileError, SlaveTokens } from '../../core/slave-tokens';

let root: string;
const FLEET = 'fleet-token-abcdefghijklmnopqrstuvwxyz';

beforeEach(() => { root = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-slave-tokens-')); });
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('SlaveTokens', () => {
  it('without a record the fleet token is presented (agents deployed before per-slave tokens)', () => {
    expect(new SlaveTokens(root, 'prod').candidates('pc', FLEET)).toEqual([FLEET]);
    expect(new SlaveTokens(root, 'prod').candidates('pc', undefined)).toEqual([]);
  });

  it('a deploy creates the slave\'s own token (0600, distinct per slave); until it is installed the fleet token comes first', () => {
    const t = new SlaveTokens(root, 'prod');
    const pc = t.forDeploy('pc');
    const vps = t.forDeploy('vps');
    expect(pc).not.toBe(vps);
    expect(t.forDeploy('pc')).toBe(pc);
    expect(fs.statSync(t.file('pc')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(root, 'prod')).mode & 0o777).toBe(0o700);
    expect(t.candidates('pc', FLEET)).toEqual([FLEET, pc]);
    t.markInstalled('pc', pc);
    expect(t.candidates('pc', FLEET)).toEqual([pc]);
    // Marking a token that is not the current one changes nothing.
    t.markInstalled('vps', 'some-other-token-0123456789abcdef');
    expect(t.candidates('vps', FLEET)).toEqual([FLEET, vps]);
  });

  it('during a rotation: the new one, then the old one', () => {
    const t = new SlaveTokens(root, 'prod');
    t.write('pc', { current: 'new-token-0123456789abcdefghij', previous: 'old-token-0123456789abcdefghij', installed: true });
    expect(t.candidates('pc', FLEET)).toEqual(['new-token-0123456789abcdefghij', 'old-token-0123456789abcdefghij']);
  });

  it('a swarm rotation staged for the next deploy: the old one (still in the service\'s secret), then the new one; the agent accepting the new one retires the old', () => {
    const t = new SlaveTokens(root, 'prod');
    t.write('pc', { current: 'new-token-0123456789abcdefghij', previous: 'old-token-0123456789abcdefghij', installed: false });
    expect(t.candidates('pc', FLEET)).toEqual(['old-token-0123456789abcdefghij', 'new-token-0123456789abcdefghij']);
    t.confirmInstalled('pc', 'old-token-0123456789abcdefghij');
    expect(t.read('pc')).toMatchObject({ current: 'new-token-0123456789abcdefghij', previous: 'old-token-0123456789abcdefghij', installed: false });
    t.confirmInstalled('pc', 'new-token-0123456789abcdefghij');
    expect(t.candidates('pc', FLEET)).toEqual(['new-token-0123456789abcdefghij']);
  });

  it('a damaged record is an error naming the file and the fix; names that are not file names are refused', () => {
    const t = new SlaveTokens(root, 'prod');
    fs.mkdirSync(path.join(root, 'prod'), { recursive: true });
    fs.writeFileSync(t.file('pc'), '{"current":"short"}');
    expect(() => t.candidates('pc', FLEET)).toThrow(SlaveTokenFileError);
    expect(() => t.candidates('pc', FLEET)).toThrow(/pc\.json is not a slave token record; .*d8 up --force --slave pc/);
    expect(() => t.file('../etc/passwd')).toThrow(SlaveTokenFileError);
    expect(() => new SlaveTokens(root, '../x')).toThrow(SlaveTokenFileError);
  });
});
