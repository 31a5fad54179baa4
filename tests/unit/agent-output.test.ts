import { OutputCollector } from '../../agent/process-runner';
import { taskEnv, toResponse } from '../../agent/executor';
import { parseUpdateState } from '../../agent/update-state';
import { ExecuteResponseSchema } from '../../core/protocol';

describe('OutputCollector', () => {
  it('keeps everything under the cap', () => {
    const c = new OutputCollector(10);
    c.push(Buffer.from('abc'));
    c.push(Buffer.from('defg'));
    expect(c.text()).toBe('abcdefg');
    expect(c.truncated).toBe(false);
  });
  it('exactly at the cap is not truncated', () => {
    const c = new OutputCollector(4);
    c.push(Buffer.from('ab'));
    c.push(Buffer.from('cd'));
    expect([c.text(), c.truncated]).toEqual(['abcd', false]);
  });
  it('cuts the chunk that crosses the cap and drops the rest', () => {
    const c = new OutputCollector(5);
    c.push(Buffer.from('abc'));
    c.push(Buffer.from('defgh'));
    c.push(Buffer.from('ijk'));
    expect([c.text(), c.bytes, c.truncated]).toEqual(['abcde', 5, true]);
  });
  it('one more byte after the cap marks it truncated', () => {
    const c = new OutputCollector(2);
    c.push(Buffer.from('ab'));
    expect(c.truncated).toBe(false);
    c.push(Buffer.from('c'));
    expect(c.truncated).toBe(true);
  });
});

describe('toResponse', () => {
  const base = { exitCode: 0, signal: null, timedOut: false, aborted: false, output: 'x', truncated: false, spawnError: null, durationMs: 1.23456 };
  it('success only on exit 0', () => {
    expect(ExecuteResponseSchema.parse(toResponse(base, 'native', 5))).toMatchObject({ success: true, error: null, exit_code: 0, duration_ms: 1.235 });
    expect(toResponse({ ...base, exitCode: 2 }, 'venv', 5)).toMatchObject({ success: false, error: 'exit code 2', method: 'venv' });
  });
  it('names timeouts, signals and spawn errors', () => {
    expect(toResponse({ ...base, exitCode: null, signal: 'SIGKILL', timedOut: true }, 'native', 5).error).toMatch(/timed out after 5 s/);
    expect(toResponse({ ...base, exitCode: null, signal: 'SIGSEGV' }, 'native', 5).error).toBe('killed by SIGSEGV');
    expect(toResponse({ ...base, exitCode: null, spawnError: 'could not start x' }, 'native', 5)).toMatchObject({ success: false, error: 'could not start x' });
  });
});

describe('taskEnv', () => {
  it('drops the agent secrets and keeps the rest', () => {
    const env = taskEnv({ PATH: '/bin', D8_AGENT_TOKEN: 't', D8_AGENT_TOKEN_FILE: '/f', D8_VENV_DIR: '/v' });
    expect(env).toEqual({ PATH: '/bin', D8_VENV_DIR: '/v' });
  });
});

describe('parseUpdateState', () => {
  it.each([
    ['{"update_pending":true,"update_failed":false}', { update_pending: true, update_failed: false }],
    ['{"update_failed":true}', { update_pending: false, update_failed: true }],
    ['{"update_pending":"yes"}', { update_pending: false, update_failed: false }],
    ['not json', { update_pending: false, update_failed: false }],
    ['[]', { update_pending: false, update_failed: false }],
  ])('%s', (text, expected) => expect(parseUpdateState(text)).toEqual(expected));
});
