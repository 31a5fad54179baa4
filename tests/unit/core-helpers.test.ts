/** The shared helpers in core/: shell quoting (through a real sh), tails, the fleet's secret list, the dev token. */
import { spawnSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { shQuote } from '../../core/shell-quote';
import { tail } from '../../core/text';
import { fleetRedactor, fleetSecrets } from '../../core/fleet-secrets';
import { resolveFleetConfig, withDevToken } from '../../core/stack-config';

describe('shQuote', () => {
  it.each([
    'plain', 'with space', "it's", "''", 'a"b', '$HOME', '`id`', '$(id)', 'back\\slash', 'new\nline', '*', '', '-n',
  ])('sh reads %j back as one word, unexpanded', (s) => {
    const r = spawnSync('sh', ['-c', `printf '%s' ${shQuote(s)}`], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(s);
  });
});

describe('tail', () => {
  it('keeps short text, cuts long text from the front with a mark', () => {
    expect(tail('abc', 5)).toBe('abc');
    expect(tail('abcdefgh', 3)).toBe('…fgh');
    expect(tail(null)).toBe('');
    expect(tail(undefined)).toBe('');
  });
});

describe('fleetSecrets / fleetRedactor', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-secrets-'));
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));
  const slaves = [{ name: 'a', host: '127.0.0.2', user: 'u' }];

  it('covers the agent token, the SSH key (inline or from its file), the Telegram token and the environment', () => {
    const keyPath = path.join(home, 'id_test');
    const keyText = '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAkeymaterial\n-----END OPENSSH PRIVATE KEY-----\n';
    fs.writeFileSync(keyPath, keyText, { mode: 0o600 });
    const env = { D8_HOME: home, GIT_TOKEN: 'gitsecretvalue123', D8_DASHBOARD_TOKEN: 'dashboard-secret-value-0123456789' };
    const config = resolveFleetConfig({ slaves, agentToken: 'A'.repeat(40), sshKeyPath: keyPath, telegramToken: '123456:' + 'b'.repeat(35) }, { stack: 'prod', env });
    const secrets = fleetSecrets(config, env);
    expect(secrets).toEqual(expect.arrayContaining(['A'.repeat(40), keyText, '123456:' + 'b'.repeat(35), 'gitsecretvalue123', 'dashboard-secret-value-0123456789']));
    const text = fleetRedactor(config, env).text(`token ${'A'.repeat(40)} git gitsecretvalue123`);
    expect(text).toBe('token *** git ***');
  });

  it('an unreadable key file is not an error', () => {
    const config = resolveFleetConfig({ slaves, sshKeyPath: path.join(home, 'missing') }, { stack: 'prod', env: {} });
    expect(fleetSecrets(config, {})).toEqual([]);
  });
});

describe('withDevToken', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-devtoken-'));
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));
  const slaves = [{ name: 'local', host: 'local', user: 'u' }];

  it('gives the dev stack a generated token kept 0600 in D8_HOME, the same on every load', () => {
    const env = { D8_HOME: home };
    const first = withDevToken(resolveFleetConfig({ slaves }, { stack: 'dev', env }), env).agentToken;
    const second = withDevToken(resolveFleetConfig({ slaves }, { stack: 'dev', env }), env).agentToken;
    expect(first).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(second).toBe(first);
    expect(fs.statSync(path.join(home, 'dev-agent-token')).mode & 0o777).toBe(0o600);
  });

  it('leaves other stacks and configured tokens alone', () => {
    const env = { D8_HOME: home };
    expect(withDevToken(resolveFleetConfig({ slaves }, { stack: 'prod', env }), env).agentToken).toBeUndefined();
    const given = 'G'.repeat(40);
    expect(withDevToken(resolveFleetConfig({ slaves, agentToken: given }, { stack: 'dev', env }), env).agentToken).toBe(given);
  });
});
