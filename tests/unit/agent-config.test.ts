import fs from 'fs';
import os from 'os';
import path from 'path';
import { AgentConfigError, loadAgentConfig, resolveVersionFile } from '../../agent/config';

const TOKEN = 'k3J9-agent-token-for-unit-tests-xyz';
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-agent-config-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function errorOf(env: NodeJS.ProcessEnv): AgentConfigError {
  try {
    loadAgentConfig(env, dir);
  } catch (err) {
    if (err instanceof AgentConfigError) return err;
    throw err;
  }
  throw new Error('expected an AgentConfigError');
}

describe('loadAgentConfig', () => {
  it('defaults', () => {
    const c = loadAgentConfig({ D8_AGENT_TOKEN: TOKEN }, dir);
    expect(c).toMatchObject({
      token: TOKEN, host: '0.0.0.0', port: 7600, installStrategy: null, supervisor: null, venvDir: null, taskImage: 'd8-base:bookworm',
      python: 'python3', maxConcurrency: 4, stateDir: null, restartedFrom: null, bindRetryMs: 0,
    });
  });

  it('reads every variable', () => {
    const c = loadAgentConfig({
      D8_AGENT_TOKEN: TOKEN, D8_AGENT_PORT: '0', D8_AGENT_HOST: '127.0.0.1', D8_INSTALL_STRATEGY: 'venv',
      D8_VENV_DIR: '/opt/venv', D8_TASK_IMAGE: 'img:1', D8_PYTHON: '/usr/bin/python3', D8_MAX_CONCURRENCY: '9',
      D8_STATE_DIR: '/var/lib/d8', D8_RESTART_MODE: 'exit', D8_RESTARTED_FROM: '123', D8_VERSION_FILE: 'v.json',
      D8_SUPERVISOR: 'cron',
    }, dir);
    expect(c).toMatchObject({
      port: 0, host: '127.0.0.1', installStrategy: 'venv', venvDir: '/opt/venv', taskImage: 'img:1', python: '/usr/bin/python3',
      maxConcurrency: 9, stateDir: '/var/lib/d8', restartMode: 'exit', restartedFrom: 123, bindRetryMs: 15_000, supervisor: 'cron',
      versionFile: path.resolve('v.json'),
    });
  });

  it.each([
    [{}, 'D8_AGENT_TOKEN', /no token is set/],
    [{ D8_AGENT_TOKEN: 'abc' }, 'D8_AGENT_TOKEN', /only 3 characters/],
    [{ D8_AGENT_TOKEN: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' }, 'D8_AGENT_TOKEN', /repetitive/],
    [{ D8_AGENT_TOKEN: TOKEN, D8_AGENT_PORT: '-1' }, 'D8_AGENT_PORT', /between 0 and 65535/],
    [{ D8_AGENT_TOKEN: TOKEN, D8_AGENT_PORT: '7600.5' }, 'D8_AGENT_PORT', /integer/],
    [{ D8_AGENT_TOKEN: TOKEN, D8_MAX_CONCURRENCY: 'lots' }, 'D8_MAX_CONCURRENCY', /integer/],
    [{ D8_AGENT_TOKEN: TOKEN, D8_INSTALL_STRATEGY: 'apt' }, 'D8_INSTALL_STRATEGY', /docker, venv, native/],
    [{ D8_AGENT_TOKEN: TOKEN, D8_RESTART_MODE: 'reboot' }, 'D8_RESTART_MODE', /spawn.*exit/],
    [{ D8_AGENT_TOKEN: TOKEN, D8_SUPERVISOR: 'init.d' }, 'D8_SUPERVISOR', /system-unit, user-unit, cron, setsid, container/],
  ])('%j is refused naming %s', (env, variable, msg) => {
    const e = errorOf(env as NodeJS.ProcessEnv);
    expect(e.variable).toBe(variable);
    expect(e.message).toMatch(msg);
    expect(e.exitCode).toBe(2);
  });

  it('prefers D8_AGENT_TOKEN over the token file, and trims the file', () => {
    const f = path.join(dir, 'tok');
    fs.writeFileSync(f, `  ${TOKEN}x\n`);
    expect(loadAgentConfig({ D8_AGENT_TOKEN_FILE: f }, dir).token).toBe(`${TOKEN}x`);
    expect(loadAgentConfig({ D8_AGENT_TOKEN: TOKEN, D8_AGENT_TOKEN_FILE: f }, dir).token).toBe(TOKEN);
  });

  it('never puts the token in an error message', () => {
    const e = errorOf({ D8_AGENT_TOKEN: 'secret-ish-token' });
    expect(e.message).not.toContain('secret-ish-token');
  });
});

describe('resolveVersionFile', () => {
  it('prefers the file beside the agent, then the parents (dist/agent -> repo root)', () => {
    const here = path.join(dir, 'repo', 'dist', 'agent');
    fs.mkdirSync(here, { recursive: true });
    const root = path.join(dir, 'repo', 'version_info.json');
    fs.writeFileSync(root, '{}');
    expect(resolveVersionFile({}, here)).toBe(root);
    fs.writeFileSync(path.join(here, 'version_info.json'), '{}');
    expect(resolveVersionFile({}, here)).toBe(path.join(here, 'version_info.json'));
    expect(resolveVersionFile({ D8_VERSION_FILE: '/x/v.json' }, here)).toBe('/x/v.json');
  });
});
