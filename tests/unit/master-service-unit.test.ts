/** The master's systemd unit (cli/master-service/unit.ts): what `d8 master install` writes. */
import fs from 'fs';
import path from 'path';
import {
  EXAMPLE_SPEC, envFilePath, meetsEnginesFloor, renderEnvFile, renderMasterUnit, stopTimeoutSeconds, UnitSpecError, ENV_FILE_KEYS,
  type MasterUnitSpec,
} from '../../cli/master-service/unit';
import { TuningSchema } from '../../master/daemon/tuning';

/** systemd's view of a unit: section → key → values (comments and blank lines dropped). */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) { section = s[1]; out[section] ??= {}; continue; }
    const eq = line.indexOf('=');
    if (eq < 1) throw new Error(`not a unit line: ${line}`);
    ((out[section] ??= {})[line.slice(0, eq)] ??= []).push(line.slice(eq + 1));
  }
  return out;
}

const SPEC: MasterUnitSpec = {
  stack: 'home', node: '/opt/node-v22.22.0-linux-arm64/bin/node', checkout: '/srv/d8-fleet', d8Home: '/var/lib/d8', user: 'd8',
  heapMb: 128, stopGraceMs: 60_000,
};

describe('renderMasterUnit', () => {
  const unit = parseUnit(renderMasterUnit(SPEC));
  const svc = unit.Service;

  it('runs the given node on the checkout\'s bin/d8.js with absolute paths, the heap cap as that node\'s argument', () => {
    expect(svc.ExecStart).toEqual(['/opt/node-v22.22.0-linux-arm64/bin/node --max-old-space-size=128 /srv/d8-fleet/bin/d8.js master --stack home']);
    expect(svc.WorkingDirectory).toEqual(['/srv/d8-fleet']);
    expect(svc.User).toEqual(['d8']);
    expect(svc.Environment).toContain('D8_HOME=/var/lib/d8');
  });

  it('never caps other node processes: no NODE_OPTIONS', () => {
    expect((svc.Environment ?? []).filter((e) => e.startsWith('NODE_OPTIONS'))).toEqual([]);
    expect(Object.keys(svc)).not.toContain('NODE_OPTIONS');
  });

  it('reads the secrets from D8_HOME/master.env, which must exist (no leading "-")', () => {
    expect(svc.EnvironmentFile).toEqual(['/var/lib/d8/master.env']);
    expect(envFilePath('/var/lib/d8')).toBe('/var/lib/d8/master.env');
  });

  it('stops with SIGTERM to the daemon only, and waits longer than the daemon\'s own grace', () => {
    expect(svc.KillSignal).toEqual(['SIGTERM']);
    expect(svc.KillMode).toEqual(['mixed']);
    const defaultGrace = TuningSchema.parse({}).stopGraceMs;
    for (const grace of [0, 1500, defaultGrace, 300_000]) {
      const t = Number(parseUnit(renderMasterUnit({ ...SPEC, stopGraceMs: grace })).Service.TimeoutStopSec[0]);
      expect(t * 1000).toBeGreaterThan(grace + 5000);
      expect(t).toBe(stopTimeoutSeconds(grace));
    }
  });

  it('comes back after a crash, starts at boot, and uses no credentials directives (they fail under qemu-user)', () => {
    expect(svc.Restart).toEqual(['always']);
    expect(unit.Install.WantedBy).toEqual(['multi-user.target']);
    const keys = Object.values(unit).flatMap((s) => Object.keys(s));
    expect(keys.filter((k) => /Credential/.test(k))).toEqual([]);
  });

  it.each([
    ['a relative node', { node: 'node' }, /node must be an absolute path/],
    ['a checkout with a space', { checkout: '/home/pi/my fleet' }, /cannot hold unquoted/],
    ['a D8_HOME with %', { d8Home: '/home/pi/%h' }, /cannot hold unquoted/],
    ['a stack with a space', { stack: 'a b' }, /not a stack name/],
    ['a tiny heap', { heapMb: 8 }, /≥ 32/],
  ])('refuses %s', (_what, patch, err) => {
    expect(() => renderMasterUnit({ ...SPEC, ...patch })).toThrow(UnitSpecError);
    expect(() => renderMasterUnit({ ...SPEC, ...patch })).toThrow(err);
  });

  it('scripts/systemd/d8-master.service is the rendered example (one source of truth)', () => {
    const shipped = fs.readFileSync(path.join(__dirname, '..', '..', 'scripts', 'systemd', 'd8-master.service'), 'utf8');
    expect(shipped).toBe(renderMasterUnit(EXAMPLE_SPEC));
  });
});

describe('renderEnvFile', () => {
  it('lists every key commented out, so a fresh file sets nothing and leaks nothing', () => {
    const text = renderEnvFile();
    const active = text.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    expect(active).toEqual([]);
    for (const [k] of ENV_FILE_KEYS) expect(text).toContain(`#${k}=`);
    expect(text).not.toContain('D8_AGENT_TOKEN');
  });
});

describe('meetsEnginesFloor', () => {
  it.each([
    ['v20.20.2', '>=20', true], ['v22.22.0', '>=20', true], ['v18.20.4', '>=20', false], ['v19.9.0', '>=20', false],
    ['v22.4.0', '>=22.5', false], ['v22.5.0', '>=22.5', true], ['v23.0.0', '>=22.5', true], ['garbage', '>=20', false], ['v20.0.0', '^20', false],
  ])('%s against %s: %s', (v, e, ok) => {
    expect(meetsEnginesFloor(v, e)).toBe(ok);
  });
});
