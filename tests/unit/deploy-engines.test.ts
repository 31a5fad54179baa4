/** Pure parts of the deploy engines: the pulumi deployer's targeted up, its reading of results and failures, the CLI's exit statuses. */
import { deployExitCode, DEPLOY_EXIT_CODES, exitCodesHelp } from '../../cli/exit-codes';
import { DeployError, DeployErrorKindSchema, type DeployResult } from '../../core/deploy-result';
import { slaveUrns } from '../../infra/urns';
import { deployErrorKind, HostUnsupportedError, RemoteCommandError, SlaveConnectError } from '../../master/deploy/direct/errors';
import { installResultFromOutputs, installResultFromText, pulumiErrorKind } from '../../master/deploy/pulumi/pulumi-deployer';
import { targetedUpOptions } from '../../master/deploy/pulumi/up-options';

const result = (over: Partial<DeployResult>): DeployResult => ({
  slave: 's', engine: 'pulumi', status: 'deployed', ok: true, strategy: 'venv', attempts: [], commit: null, buildLogPath: null,
  error: null, errorKind: null, durationMs: 1, ...over,
});
const attempt = { strategy: 'venv', attempt: 1, ok: true, exit_code: 0, stderr_tail: '', seconds: 1.5 };

describe('targeted up', () => {
  const urns = slaveUrns('prod', 'pc', { local: false });
  it('replaces only the URNs the state has: a new slave gets a plain targeted create', () => {
    const fresh = targetedUpOptions('prod', { name: 'pc', local: false }, undefined, { existing: new Set() });
    expect(fresh.replace).toEqual([]);
    expect(fresh.target).toEqual([urns.component, urns.state, urns.bundle, urns.install]);
    const half = targetedUpOptions('prod', { name: 'pc', local: false }, undefined, { existing: new Set([urns.component, urns.bundle]) });
    expect(half.replace).toEqual([urns.bundle]);
  });
  it('never replaces the state (its delete is the full clean), and replaces nothing when not forced', () => {
    const all = new Set(Object.values(urns));
    expect(targetedUpOptions('prod', { name: 'pc', local: false }, undefined, { existing: all }).replace).toEqual([urns.bundle, urns.install]);
    expect(targetedUpOptions('prod', { name: 'pc', local: false }, undefined, { existing: all, replace: false }).replace).toEqual([]);
  });
});

describe('reading what the installer said', () => {
  it('from the stack outputs (the program exports installs per slave)', () => {
    const ok = { ok: true, strategy: 'venv', attempts: [attempt] };
    expect(installResultFromOutputs({ installs: { value: { pc: ok, vps: null } } }, 'pc')).toEqual(ok);
    expect(installResultFromOutputs({ installs: { value: { vps: null } } }, 'vps')).toBeNull();
    expect(installResultFromOutputs({ slaves: { value: {} } }, 'pc')).toBeNull();
  });
  it('from a failed install\'s output inside the provider\'s error', () => {
    const failed = { ok: false, strategy: null, attempts: [{ ...attempt, ok: false, exit_code: 1 }] };
    const text = `Process exited with status 1: running "sh install.sh":\n[d8-install] venv attempt 1/1: failed\n    ${JSON.stringify(failed)}\n`;
    expect(installResultFromText(text)).toEqual(failed);
    expect(installResultFromText('ssh: handshake failed')).toBeNull();
    expect(installResultFromText('{"ok": maybe')).toBeNull();
  });
});

describe('pulumi error kinds', () => {
  it('come from typed errors first, then from what the deploy saw', () => {
    expect(pulumiErrorKind(new DeployError('no backend', 'config'), { installFailed: true, timedOut: true })).toBe('config');
    expect(pulumiErrorKind(new SlaveConnectError('x', 'host-key'), { installFailed: false, timedOut: false })).toBe('host_key');
    expect(pulumiErrorKind(new SlaveConnectError('x', 'refused'), { installFailed: false, timedOut: false })).toBe('connect');
    // The probe before the engine: a refused host is `unsupported`, a probe that could not run is the install's failure.
    expect(pulumiErrorKind(new HostUnsupportedError('x'), { installFailed: false, timedOut: false })).toBe('unsupported');
    expect(pulumiErrorKind(new RemoteCommandError('x', null), { installFailed: false, timedOut: false })).toBe('install_failed');
    expect(pulumiErrorKind(new Error('CommandError'), { installFailed: true, timedOut: true })).toBe('install_failed');
    expect(pulumiErrorKind(new Error('CommandError'), { installFailed: false, timedOut: true })).toBe('timeout');
    expect(pulumiErrorKind(new Error('CommandError'), { installFailed: false, timedOut: false })).toBe('engine');
  });
});

describe('d8 up exit status', () => {
  it('is 0 for deployed and up to date, else the kind of the first failed slave', () => {
    expect(deployExitCode([result({}), result({ status: 'up_to_date' })])).toBe(0);
    expect(deployExitCode([result({}), result({ status: 'failed', ok: false, errorKind: 'auth' }), result({ status: 'failed', ok: false, errorKind: 'timeout' })]))
      .toBe(DEPLOY_EXIT_CODES.auth);
    expect(deployExitCode([result({ status: 'failed', ok: false, errorKind: null })])).toBe(DEPLOY_EXIT_CODES.engine);
  });
  it('gives every kind its own status, documented in --help', () => {
    const codes = DeployErrorKindSchema.options.map((k) => DEPLOY_EXIT_CODES[k]);
    expect(new Set([...codes, 0, 1]).size).toBe(codes.length + 2);
    for (const k of DeployErrorKindSchema.options) expect(exitCodesHelp()).toMatch(new RegExp(`^  ${DEPLOY_EXIT_CODES[k]}\\s+${k}\\s+\\S`, 'm'));
  });
  it('tells a host no strategy can run on (refused by the probe) from an installer that ran and failed', () => {
    expect(deployErrorKind(new HostUnsupportedError('box: no strategy can work on this host'))).toBe('unsupported');
    expect(deployErrorKind(new RemoteCommandError('box: every strategy failed', 1))).toBe('install_failed');
    expect(deployExitCode([result({ status: 'failed', ok: false, errorKind: 'unsupported' })])).toBe(17);
  });
});
