/**
 * The agent's HTTP API against a real agent process on an ephemeral loopback port: health and
 * version, every bad-input case, and that the token never shows up in its output.
 */
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import { ErrorResponseSchema, ExecuteResponseSchema, HealthResponseSchema, LIMITS, VersionResponseSchema } from '../../core/protocol';
import { AgentHandle, makeTempDir, startAgent } from '../support/agent-process';

jest.setTimeout(120_000);

let agent: AgentHandle;

beforeAll(async () => {
  agent = await startAgent({ env: { D8_INSTALL_STRATEGY: 'native', D8_AUTH_MAX_FAILURES: '1000' } });
});
afterAll(async () => {
  await agent?.stop();
});

function expectError(r: { status: number; body: unknown }, status: number, field?: string): { error: string; field?: string } {
  expect(r.status).toBe(status);
  const e = ErrorResponseSchema.parse(r.body);
  if (field !== undefined) expect(e.field).toBe(field);
  return e;
}

describe('health and version', () => {
  it('GET /api/health reports exactly the version file it was started with', async () => {
    const r = await agent.request('GET', '/api/health', undefined, { token: null });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/application\/json/);
    const h = HealthResponseSchema.parse(r.body);
    const v = agent.version!;
    expect({ branch: h.branch, commit: h.commit, version: h.version, deployed_at: h.deployed_at, dirty: h.dirty })
      .toEqual({ branch: v.branch, commit: v.commit, version: v.version, deployed_at: v.deployed_at, dirty: v.dirty });
    expect(h.status).toBe('ok');
    expect(h.hostname).toBe(os.hostname());
    expect(h.node_version).toBe(process.versions.node);
    expect(h.install_strategy).toBe('native');
    expect(h.execution_methods.native).toBe(true);
    expect(h.execution_methods.venv).toBe(false); // no D8_VENV_DIR
    expect(h.python_version).toMatch(/^3\.\d+/);
    expect(h.update_pending).toBe(false);
    expect(h.update_failed).toBe(false);
    expect(h.supervisor).toBeNull(); // started by hand, not by the installer
    expect(h.reboot_safe).toBe(false);
  });

  it.each([
    ['user-unit', true],
    ['setsid', false],
  ] as const)('reports the supervisor the installer gave it (%s) and whether it is reboot-safe', async (supervisor, safe) => {
    const a = await startAgent({ env: { D8_INSTALL_STRATEGY: 'venv', D8_SUPERVISOR: supervisor } });
    try {
      const h = HealthResponseSchema.parse((await a.request('GET', '/api/health', undefined, { token: null })).body);
      expect({ supervisor: h.supervisor, reboot_safe: h.reboot_safe }).toEqual({ supervisor, reboot_safe: safe });
    } finally {
      await a.stop();
    }
  });

  it('uptime grows', async () => {
    const a = HealthResponseSchema.parse((await agent.request('GET', '/api/health')).body).uptime_s;
    await new Promise((r) => setTimeout(r, 120));
    const b = HealthResponseSchema.parse((await agent.request('GET', '/api/health')).body).uptime_s;
    expect(b).toBeGreaterThan(a);
  });

  it('GET /api/version returns the four version fields, nothing else', async () => {
    const r = await agent.request('GET', '/api/version', undefined, { token: null });
    expect(r.status).toBe(200);
    const v = agent.version!;
    expect(r.body).toEqual({ commit: v.commit, branch: v.branch, version: v.version, deployed_at: v.deployed_at });
    VersionResponseSchema.strict().parse(r.body);
  });

  it('ignores a query string and answers HEAD without a body', async () => {
    expect((await agent.request('GET', '/api/version?x=1')).status).toBe(200);
    const head = await agent.request('HEAD', '/api/health');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
  });

  it('the version fields do not change when the file changes after start (read once)', async () => {
    const before = (await agent.request('GET', '/api/version')).body;
    const changed = { ...agent.version!, commit: 'f'.repeat(40) };
    fs.writeFileSync(agent.versionFile, JSON.stringify(changed));
    try {
      expect((await agent.request('GET', '/api/version')).body).toEqual(before);
    } finally {
      fs.writeFileSync(agent.versionFile, JSON.stringify(agent.version));
    }
  });

  it('reports update_pending / update_failed from $D8_STATE_DIR/update.json', async () => {
    const dir = makeTempDir('d8-agent-state-');
    const withState = await startAgent({ env: { D8_STATE_DIR: dir } });
    try {
      let h = HealthResponseSchema.parse((await withState.request('GET', '/api/health')).body);
      expect([h.update_pending, h.update_failed]).toEqual([false, false]);
      fs.writeFileSync(path.join(dir, 'update.json'), JSON.stringify({ update_pending: true, update_failed: false }));
      await new Promise((r) => setTimeout(r, 1200)); // the state file is re-read at most once a second
      h = HealthResponseSchema.parse((await withState.request('GET', '/api/health')).body);
      expect([h.update_pending, h.update_failed]).toEqual([true, false]);
      fs.writeFileSync(path.join(dir, 'update.json'), JSON.stringify({ update_pending: false, update_failed: true }));
      await new Promise((r) => setTimeout(r, 1200));
      h = HealthResponseSchema.parse((await withState.request('GET', '/api/health')).body);
      expect([h.update_pending, h.update_failed]).toEqual([false, true]);
      fs.writeFileSync(path.join(dir, 'update.json'), '{ not json');
      await new Promise((r) => setTimeout(r, 1200));
      h = HealthResponseSchema.parse((await withState.request('GET', '/api/health')).body);
      expect([h.update_pending, h.update_failed]).toEqual([false, false]);
    } finally {
      await withState.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bad input', () => {
  it('unknown route: 404 with a JSON error', async () => {
    const e = expectError(await agent.request('GET', '/api/nope'), 404);
    expect(e.error).toMatch(/\/api\/nope/);
    expectError(await agent.request('GET', '/'), 404);
    expectError(await agent.request('GET', '/api/health/'), 404);
  });

  it('wrong method: 405 with an Allow header', async () => {
    let r = await agent.request('POST', '/api/health', {});
    expectError(r, 405);
    expect(r.headers.allow).toBe('GET, HEAD');
    r = await agent.request('GET', '/api/execute');
    expectError(r, 405);
    expect(r.headers.allow).toBe('POST');
    r = await agent.request('DELETE', '/api/restart');
    expectError(r, 405);
    expect(r.headers.allow).toBe('POST');
  });

  it('missing or wrong token: 401, and nothing runs', async () => {
    const marker = path.join(agent.tmpDir, 'must-not-exist');
    const body = { command: `touch ${marker}` };
    let r = await agent.request('POST', '/api/execute', body, { token: null });
    expect(expectError(r, 401).error).toMatch(/bearer/i);
    expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
    expectError(await agent.request('POST', '/api/execute', body, { token: 'x'.repeat(40) }), 401);
    expectError(await agent.request('POST', '/api/execute', body, { token: agent.token.slice(0, -1) }), 401);
    expectError(await agent.request('POST', '/api/execute', body, { token: null, headers: { Authorization: `Basic ${agent.token}` } }), 401);
    expectError(await agent.request('POST', '/api/restart', undefined, { token: 'wrong-token-wrong-token-wrong' }), 401);
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('invalid JSON and empty bodies: 400', async () => {
    expect(expectError(await agent.execute('{"command": '), 400).error).toMatch(/not valid JSON/);
    expect(expectError(await agent.execute(''), 400).error).toMatch(/empty/);
    expectError(await agent.execute('[1,2]'), 400);
    expectError(await agent.execute('"just a string"'), 400);
    expectError(await agent.execute('null'), 400);
  });

  it('schema violations: 400 naming the field', async () => {
    expectError(await agent.execute({}), 400, 'command');
    expectError(await agent.execute({ command: '' }), 400, 'command');
    expectError(await agent.execute({ command: 42 }), 400, 'command');
    expectError(await agent.execute({ command: 'x'.repeat(LIMITS.maxCommandChars + 1) }), 400, 'command');
    expectError(await agent.execute({ command: 'true', kind: 'perl' }), 400, 'kind');
    expectError(await agent.execute({ command: 'true', method: 'ssh' }), 400, 'method');
    expectError(await agent.execute({ command: 'true', timeout_s: 0 }), 400, 'timeout_s');
    expectError(await agent.execute({ command: 'true', timeout_s: -5 }), 400, 'timeout_s');
    expectError(await agent.execute({ command: 'true', timeout_s: LIMITS.maxTimeoutS + 1 }), 400, 'timeout_s');
    expectError(await agent.execute({ command: 'true', timeout_s: '10' }), 400, 'timeout_s');
    expectError(await agent.execute({ command: 'true', working_dir: 7 }), 400, 'working_dir');
    const e = expectError(await agent.execute({ command: 'true', comand: 'typo' }), 400, 'comand');
    expect(e.error).toMatch(/unknown field/);
  });

  it('working_dir must exist and be a directory: 400', async () => {
    const missing = path.join(agent.tmpDir, 'no-such-dir');
    expect(expectError(await agent.execute({ command: 'true', working_dir: missing }), 400, 'working_dir').error).toMatch(/does not exist/);
    const file = path.join(agent.tmpDir, 'a-file');
    fs.writeFileSync(file, '');
    expect(expectError(await agent.execute({ command: 'true', working_dir: file }), 400, 'working_dir').error).toMatch(/not a directory/);
  });

  it('body over the limit: 413 (declared or streamed)', async () => {
    const big = JSON.stringify({ command: 'x'.repeat(LIMITS.maxBodyBytes + 10) });
    expectError(await agent.execute(big), 413);
    // Chunked transfer, no Content-Length: the agent counts while reading.
    const r = await new Promise<number>((resolve, reject) => {
      const sock = net.connect(agent.port, '127.0.0.1', () => {
        sock.write(`POST /api/execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agent.token}\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n`);
        const chunk = 'y'.repeat(64 * 1024);
        for (let i = 0; i < 6; i++) sock.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      });
      let data = '';
      sock.on('data', (d) => {
        data += d.toString();
        const m = /^HTTP\/1\.1 (\d+)/.exec(data);
        if (m) {
          resolve(Number(m[1]));
          sock.destroy();
        }
      });
      sock.on('error', (err) => (data ? undefined : reject(err)));
    });
    expect(r).toBe(413);
  });

  it('malformed HTTP gets a 400, and the agent keeps serving', async () => {
    const answer = await new Promise<string>((resolve) => {
      const sock = net.connect(agent.port, '127.0.0.1', () => sock.write('THIS IS NOT HTTP\r\n\r\n'));
      let data = '';
      sock.on('data', (d) => (data += d.toString()));
      sock.on('close', () => resolve(data));
      sock.on('error', () => resolve(data));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect((await agent.request('GET', '/api/health')).status).toBe(200);
  });

  it('no input produces a 500 or a stack trace, and the agent survives them all', async () => {
    const nasty: unknown[] = [
      '{"__proto__": {"polluted": true}, "command": "true"}',
      '{"command": "true", "constructor": {"prototype": {}}}',
      { command: 'true', timeout_s: 1e308 },
      { command: 'true', working_dir: '\u0000' },
      { command: 'true', working_dir: 'x'.repeat(5000) },
      { command: '\u0000' },
      '\u00ff\u00fe',
      '{"command": "true"}'.repeat(1000),
    ];
    for (const body of nasty) {
      const r = await agent.execute(body);
      expect(r.status).not.toBe(500);
      expect(r.text).not.toMatch(/\n\s+at /); // no stack trace
      if (r.status >= 400) ErrorResponseSchema.parse(r.body);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await agent.request('GET', '/api/health')).status).toBe(200);
  });

  it('a valid request after all that still works', async () => {
    const r = await agent.execute({ command: 'echo still alive', method: 'native' });
    expect(r.status).toBe(200);
    expect(ExecuteResponseSchema.parse(r.body).output).toBe('still alive\n');
  });
});

describe('logs', () => {
  it('one JSON line per request with method, route, status and duration', async () => {
    // Health and version polls are logged at debug (they run all day); execute is a request worth a line.
    const answer = await agent.execute({ command: 'echo log-line', method: 'native' });
    expect(answer.status).toBe(200);
    const line = await agent.waitForLog((l) => l.msg === 'request' && l.route === '/api/execute' && l.status === 200);
    expect(line.method).toBe('POST');
    expect(typeof line.duration_ms).toBe('number');
    const n404 = await agent.waitForLog((l) => l.msg === 'request' && l.route === '/api/nope');
    expect(n404.status).toBe(404);
  });

  it('never contains the token, even when the token is sent in bad places', async () => {
    await agent.request('GET', `/api/${agent.token}`);
    await agent.request('GET', `/api/health?token=${agent.token}`);
    await agent.execute({ command: `echo ${agent.token}`, method: 'native' });
    await agent.execute({ command: 'true', [agent.token]: 1 });
    await agent.request('POST', '/api/execute', { command: 'true' }, { token: `${agent.token}x` });
    const marker = `/api/final-${Date.now()}`;
    await agent.request('GET', marker);
    await agent.waitForLog((l) => l.msg === 'request' && l.route === marker, 10_000, 'the last request to be logged');
    expect(agent.logLines().some((l) => l.route === '/api/***')).toBe(true); // the path holding the token, scrubbed
    expect(agent.output().length).toBeGreaterThan(0);
    expect(agent.output()).not.toContain(agent.token);
    expect(agent.output().toLowerCase()).not.toContain('authorization');
  });
});
