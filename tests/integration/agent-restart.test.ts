/**
 * POST /api/restart answers 202 and restarts detached: a new agent process comes up on the same
 * port and the old one is gone.
 */
import { HealthResponseSchema, RestartResponseSchema } from '../../core/protocol';
import { AgentHandle, LogLine, alive, sleep, startAgent, waitFor } from '../support/agent-process';

jest.setTimeout(120_000);

let agent: AgentHandle;
beforeAll(async () => {
  agent = await startAgent({ env: { D8_RESTART_MODE: 'spawn' } });
});
afterAll(async () => {
  await agent?.stop();
});

it('needs the token', async () => {
  expect((await agent.request('POST', '/api/restart', undefined, { token: null })).status).toBe(401);
  await sleep(200);
  expect(alive(agent.pid)).toBe(true);
});

it('answers 202 and comes back with a new pid on the same port', async () => {
  const oldPid = agent.pid;
  const before = HealthResponseSchema.parse((await agent.request('GET', '/api/health')).body);
  const r = await agent.request('POST', '/api/restart');
  expect(r.status).toBe(202);
  RestartResponseSchema.parse(r.body);

  const listening = await agent.waitForLog((l: LogLine) => l.msg === 'listening' && l.pid !== oldPid, 30_000, 'the restarted agent to listen');
  const newPid = Number(listening.pid);
  expect(newPid).not.toBe(oldPid);
  expect(listening.port).toBe(agent.port);
  expect(listening.restarted_from).toBe(oldPid);
  await waitFor(() => !alive(oldPid), 15_000, `old agent ${oldPid} to exit`);
  expect(alive(newPid)).toBe(true);

  const after = HealthResponseSchema.parse((await agent.request('GET', '/api/health')).body);
  expect(after.commit).toBe(before.commit);
  const exec = await agent.execute({ command: 'echo back', method: 'native' });
  expect(exec.status).toBe(200);
  expect(exec.body.output).toBe('back\n');
  // The token still never shows up, in either agent's output.
  expect(agent.output()).not.toContain(agent.token);
});
