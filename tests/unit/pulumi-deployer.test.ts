/** The pulumi deployer's pure parts: stale lock judgement, targeted-up options, outputs, engine choice. */
import { judgeLock, fileBackendDir } from '../../master/deploy/pulumi/stale-lock';
import { targetedUpOptions } from '../../master/deploy/pulumi/up-options';
import { strategyFromOutputs } from '../../master/deploy/pulumi/pulumi-deployer';
import { slaveUrns } from '../../infra/urns';
import { chooseEngine } from '../../master/deploy/select';

describe('stale pulumi locks', () => {
  const lock = { pid: 4242, hostname: 'pi', timestamp: new Date(0).toISOString(), file: '/x.json' };
  it('is stale only when its holder on this host is gone (or it is very old elsewhere)', () => {
    expect(judgeLock(lock, { hostname: 'pi', alive: () => false }).stale).toBe(true);
    expect(judgeLock(lock, { hostname: 'pi', alive: () => true }).stale).toBe(false);
    const recent = { ...lock, timestamp: new Date(1_000_000).toISOString() };
    expect(judgeLock(recent, { hostname: 'other', now: 1_000_000 + 60_000, alive: () => false }).stale).toBe(false);
    expect(judgeLock(recent, { hostname: 'other', now: 1_000_000 + 7 * 3600_000, alive: () => false }).stale).toBe(true);
  });
  it('only file:// backends have inspectable locks', () => {
    expect(fileBackendDir('file:///var/pulumi')).toBe('/var/pulumi');
    expect(fileBackendDir('https://api.pulumi.com')).toBeNull();
  });
});

describe('pulumi deployer: targeted up', () => {
  it.each([true, false])('targets and replaces exactly the URNs of infra/urns.ts (local=%s)', (local) => {
    const urns = slaveUrns('prod', 'pc-leo', { local });
    const o = targetedUpOptions('prod', { name: 'pc-leo', local });
    expect(o.target).toContain(urns.component);
    expect(o.target.every((t) => Object.values(urns).includes(t))).toBe(true);
    expect(o.replace).toEqual([urns.bundle, urns.install]);
    expect(o.targetDependents).toBe(true);
  });
  it('reads the winning strategy from stack outputs', () => {
    expect(strategyFromOutputs({ strategies: { value: { a: 'venv' } } }, 'a')).toBe('venv');
    expect(strategyFromOutputs({ slaves: { value: { a: { strategy: 'docker' } } } }, 'a')).toBe('docker');
    expect(strategyFromOutputs({ strategies: { value: { a: 'bogus' } } }, 'a')).toBeNull();
  });
  it('chooses pulumi only when a CLI is on PATH, unless told', () => {
    expect(chooseEngine('auto', { PATH: '/nonexistent' }).engine).toBe('direct');
    expect(chooseEngine('pulumi', { PATH: '/nonexistent' }).engine).toBe('pulumi');
  });
});
