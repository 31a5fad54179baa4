/**
 * POST /api/token on a real agent: `add` makes it accept the presented token and the new one (and
 * keeps both in its token file, 0600), `retire` keeps only the presented one; a request with a bad
 * body, a weak token or no token file is refused without changing anything.
 */
import fs from 'fs';
import path from 'path';
import { AgentHandle, makeTempDir, startAgent, strongToken } from '../support/agent-process';

jest.setTimeout(60_000);

describe('POST /api/token (token rotation on the agent)', () => {
  let agent: AgentHandle;
  let dir: string;
  let file: string;
  const first = strongToken();

  beforeAll(async () => {
    dir = makeTempDir('d8-token-change-');
    file = path.join(dir, 'agent-token');
    fs.writeFileSync(file, `${first}\n`, { mode: 0o600 });
    agent = await startAgent({ token: first, env: { D8_AGENT_TOKEN: '', D8_AGENT_TOKEN_FILE: file, D8_AUTH_MAX_FAILURES: '1000' } });
  });
  afterAll(async () => {
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const exec = (token: string) => agent.request('POST', '/api/execute', { command: 'true', kind: 'shell' }, { token });
  const change = (token: string, body: unknown) => agent.request('POST', '/api/token', body, { token });

  it('add: both tokens open the agent and both are in the token file; a third one does not', async () => {
    const second = strongToken();
    const r = await change(first, { action: 'add', token: second });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ accepted: 2 });
    expect((await exec(first)).status).toBe(200);
    expect((await exec(second)).status).toBe(200);
    expect((await exec(strongToken())).status).toBe(401);
    expect(fs.readFileSync(file, 'utf8')).toBe(`${first}\n${second}\n`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);

    const retired = await change(second, { action: 'retire' });
    expect(retired.body).toEqual({ accepted: 1 });
    expect((await exec(first)).status).toBe(401);
    expect((await exec(second)).status).toBe(200);
    expect(fs.readFileSync(file, 'utf8')).toBe(`${second}\n`);
    expect(agent.output()).not.toContain(second);
  });

  it.each([
    ['no body fields', {}, 400, /action/],
    ['an unknown action', { action: 'replace', token: 'x' }, 400, /action/],
    ['a weak token', { action: 'add', token: 'changeme' }, 400, /token: /],
    ['an extra field', { action: 'retire', token: 'x' }, 400, /Unrecognized key/],
  ])('%s is refused with %i and nothing changes', async (_what, body, status, message) => {
    const current = fs.readFileSync(file, 'utf8').trim();
    const r = await change(current, body);
    expect(r.status).toBe(status);
    expect(r.body.error).toMatch(message);
    expect(fs.readFileSync(file, 'utf8').trim()).toBe(current);
    expect((await exec(current)).status).toBe(200);
  });

  it('without a token it is 401; an agent with D8_AGENT_TOKEN (no file) refuses a change with 409 naming the fix', async () => {
    expect((await agent.request('POST', '/api/token', { action: 'retire' }, { token: null })).status).toBe(401);
    const envAgent = await startAgent({});
    try {
      const r = await envAgent.request('POST', '/api/token', { action: 'add', token: strongToken() }, { token: envAgent.token });
      expect(r.status).toBe(409);
      expect(r.body.error).toMatch(/D8_AGENT_TOKEN, not a token file: .*redeploy it instead/);
      expect((await envAgent.request('POST', '/api/execute', { command: 'true', kind: 'shell' }, { token: envAgent.token })).status).toBe(200);
    } finally {
      await envAgent.stop();
    }
  });
});
