/**
 * Repeated auth failures from one address lock that address's failed attempts out (429) for a while;
 * a valid token from that address is never refused (issue 12, defect 4: anything sharing the master's
 * address could otherwise cut the master off); other addresses and the unauthenticated routes are unaffected.
 */
import { AgentHandle, startAgent, waitFor } from '../support/agent-process';

jest.setTimeout(120_000);

let agent: AgentHandle;
beforeAll(async () => {
  agent = await startAgent({ env: { D8_AUTH_MAX_FAILURES: '3', D8_AUTH_WINDOW_S: '60', D8_AUTH_LOCKOUT_S: '3' } });
});
afterAll(async () => {
  await agent?.stop();
});

const ok = { command: 'echo ok', method: 'native' };

it('locks an address out after repeated failures, then lets it back in', async () => {
  expect((await agent.execute(ok)).status).toBe(200);
  for (let i = 0; i < 3; i++) {
    expect((await agent.request('POST', '/api/execute', ok, { token: `wrong-token-attempt-number-${i}` })).status).toBe(401);
  }
  // Locked: further wrong or missing tokens are refused with 429 and a Retry-After, without being counted again.
  const locked = await agent.request('POST', '/api/execute', ok, { token: 'wrong-token-while-locked-out-xxxxxxxx' });
  expect(locked.status).toBe(429);
  expect(locked.body.error).toMatch(/too many failed authentication attempts from 127\.0\.0\.1/);
  expect(Number(locked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  expect((await agent.request('POST', '/api/restart', undefined, { token: null })).status).toBe(429);

  // The right token from the same address still works, for every authenticated route.
  const master = await agent.execute(ok);
  expect(master.status).toBe(200);
  expect(master.body.output).toBe('ok\n');
  // ... and does not lift the lockout for the wrong ones.
  expect((await agent.request('POST', '/api/execute', ok, { token: null })).status).toBe(429);

  // Health and version need no auth and stay available.
  expect((await agent.request('GET', '/api/health', undefined, { token: null })).status).toBe(200);

  // Another client address is not affected.
  const other = await agent.request('POST', '/api/execute', ok, { localAddress: '127.0.0.2' });
  expect(other.status).toBe(200);

  // The lockout expires: a wrong token is answered 401 again.
  await waitFor(async () => {
    const r = await agent.request('POST', '/api/execute', ok, { token: 'wrong-token-after-the-lockout-xxxxxxx' });
    return r.status === 401 ? r : null;
  }, 20_000, 'the lockout to expire', 250);
});

it('a success resets the failure count', async () => {
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 2; i++) {
      expect((await agent.request('POST', '/api/execute', ok, { token: null, localAddress: '127.0.0.3' })).status).toBe(401);
    }
    expect((await agent.request('POST', '/api/execute', ok, { localAddress: '127.0.0.3' })).status).toBe(200);
  }
});
