/**
 * Starting the agent: it refuses a missing, short or well-known token (exit 2, one stderr line
 * saying what to set), reads the token from D8_AGENT_TOKEN_FILE, validates its configuration, and
 * `d8 agent` runs the same agent.
 */
import fs from 'fs';
import net from 'net';
import path from 'path';
import { HealthResponseSchema } from '../../core/protocol';
import { REPO_ROOT, makeTempDir, runAgentToExit, startAgent, strongToken, writeVersionFile } from '../support/agent-process';

jest.setTimeout(120_000);

let dir: string;
let versionFile: string;
beforeAll(() => {
  dir = makeTempDir('d8-agent-startup-');
  versionFile = writeVersionFile(dir).file;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function expectRefusal(r: { code: number | null; stderr: string; stdout: string }, why: RegExp, secret?: string): void {
  expect(r.code).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(why);
  if (secret) expect(r.stderr + r.stdout).not.toContain(secret);
}

describe('refusing to start', () => {
  it('without a token', async () => {
    const r = await runAgentToExit({ D8_VERSION_FILE: versionFile });
    expectRefusal(r, /no token is set.*D8_AGENT_TOKEN/);
  });

  it('with a short token', async () => {
    const r = await runAgentToExit({ D8_AGENT_TOKEN: 'short-but-secret-123', D8_VERSION_FILE: versionFile });
    expectRefusal(r, /only 20 characters.*at least 24.*D8_AGENT_TOKEN/, 'short-but-secret-123');
  });

  it('with a well-known default token', async () => {
    const r = await runAgentToExit({ D8_AGENT_TOKEN: 'CHANGE_ME_TO_A_LONG_RANDOM_TOKEN', D8_VERSION_FILE: versionFile });
    expectRefusal(r, /well-known default/, 'CHANGE_ME_TO_A_LONG_RANDOM_TOKEN');
  });

  it('with an unreadable token file', async () => {
    const r = await runAgentToExit({ D8_AGENT_TOKEN_FILE: path.join(dir, 'missing-token'), D8_VERSION_FILE: versionFile });
    expectRefusal(r, /D8_AGENT_TOKEN_FILE=.*missing-token.*ENOENT/);
  });

  it('with a weak token in the token file', async () => {
    const f = path.join(dir, 'weak-token');
    fs.writeFileSync(f, 'password\n', { mode: 0o600 });
    const r = await runAgentToExit({ D8_AGENT_TOKEN_FILE: f, D8_VERSION_FILE: versionFile });
    expectRefusal(r, /D8_AGENT_TOKEN_FILE/, 'password');
  });

  it('with a bad port, strategy or concurrency', async () => {
    const token = strongToken();
    expectRefusal(await runAgentToExit({ D8_AGENT_TOKEN: token, D8_VERSION_FILE: versionFile, D8_AGENT_PORT: 'http' }), /D8_AGENT_PORT must be an integer/, token);
    expectRefusal(await runAgentToExit({ D8_AGENT_TOKEN: token, D8_VERSION_FILE: versionFile, D8_AGENT_PORT: '70000' }), /D8_AGENT_PORT/, token);
    expectRefusal(await runAgentToExit({ D8_AGENT_TOKEN: token, D8_VERSION_FILE: versionFile, D8_INSTALL_STRATEGY: 'podman' }), /D8_INSTALL_STRATEGY must be one of docker, venv, native/, token);
    expectRefusal(await runAgentToExit({ D8_AGENT_TOKEN: token, D8_VERSION_FILE: versionFile, D8_MAX_CONCURRENCY: '0' }), /D8_MAX_CONCURRENCY/, token);
  });

  it('with a missing or invalid version file', async () => {
    const token = strongToken();
    expectRefusal(await runAgentToExit({ D8_AGENT_TOKEN: token, D8_VERSION_FILE: path.join(dir, 'nope.json') }), /cannot read version file.*D8_VERSION_FILE/, token);
    const bad = path.join(dir, 'bad-version.json');
    fs.writeFileSync(bad, JSON.stringify({ branch: 'main', commit: 'abc', version: '1', deployed_at: 'now', dirty: false }));
    expectRefusal(await runAgentToExit({ D8_AGENT_TOKEN: token, D8_VERSION_FILE: bad }), /commit must be a full 40-hex git commit/, token);
  });

  it('exits 1 with a clear message when the port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const token = strongToken();
      const r = await runAgentToExit({ D8_AGENT_TOKEN: token, D8_VERSION_FILE: versionFile, D8_AGENT_PORT: String(port) });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`));
      expect(r.stderr + r.stdout).not.toContain(token);
    } finally {
      blocker.close();
    }
  });
});

describe('starting', () => {
  it('reads the token from D8_AGENT_TOKEN_FILE', async () => {
    const token = strongToken();
    const f = path.join(dir, 'token');
    fs.writeFileSync(f, `${token}\n`, { mode: 0o600 });
    const agent = await startAgent({ token, env: { D8_AGENT_TOKEN: '', D8_AGENT_TOKEN_FILE: f } });
    try {
      const r = await agent.execute({ command: 'echo "token=${D8_AGENT_TOKEN:-unset} file=${D8_AGENT_TOKEN_FILE:-unset}"', method: 'native' });
      expect(r.status).toBe(200);
      // Tasks never see the agent's secrets.
      expect(r.body.output).toBe('token=unset file=unset\n');
      expect((await agent.execute({ command: 'true' }, {})).status).toBe(200);
      expect((await agent.request('POST', '/api/execute', { command: 'true' }, { token: strongToken() })).status).toBe(401);
      expect(agent.output()).not.toContain(token);
    } finally {
      await agent.stop();
    }
  });

  it('`d8 agent` runs the same agent (options override the environment)', async () => {
    const { file, info } = writeVersionFile(dir, { branch: 'cli-branch' });
    const agent = await startAgent({
      versionFile: file,
      command: [process.execPath, path.join(REPO_ROOT, 'bin', 'd8.js'), 'agent', '--port', '0', '--host', '127.0.0.1', '--version-file', file],
      env: { D8_AGENT_PORT: '1', D8_VERSION_FILE: path.join(dir, 'ignored.json') },
    });
    try {
      const h = HealthResponseSchema.parse((await agent.request('GET', '/api/health')).body);
      expect(h.commit).toBe(info.commit);
      expect(h.branch).toBe('cli-branch');
    } finally {
      await agent.stop();
    }
  });
});
