/**
 * POST /api/execute against a real agent: shell and python through native and a real venv,
 * working_dir, method selection, timeouts that kill grandchildren, output truncation and the
 * concurrency limit.
 */
import { execFileSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { ExecuteResponseSchema, HealthResponseSchema, LIMITS, type ExecuteResponse } from '../../core/protocol';
import { AgentHandle, alive, makeTempDir, sleep, startAgent, waitFor } from '../support/agent-process';

jest.setTimeout(180_000);

let work: string;
let venvDir: string;
let agent: AgentHandle; // with a venv, docker deliberately unavailable
let bare: AgentHandle; // no venv, max 2 concurrent executions

beforeAll(async () => {
  work = makeTempDir('d8-agent-exec-');
  venvDir = path.join(work, 'venv');
  execFileSync('python3', ['-m', 'venv', '--without-pip', venvDir], { stdio: 'pipe', timeout: 120_000 });
  [agent, bare] = await Promise.all([
    startAgent({ env: { D8_VENV_DIR: venvDir, D8_TASK_IMAGE: 'd8-no-such-image:never' } }),
    startAgent({ env: { D8_MAX_CONCURRENCY: '2', D8_TASK_IMAGE: 'd8-no-such-image:never' } }),
  ]);
});
afterAll(async () => {
  await Promise.all([agent?.stop(), bare?.stop()]);
  fs.rmSync(work, { recursive: true, force: true });
});

async function run(a: AgentHandle, body: Record<string, unknown>): Promise<ExecuteResponse> {
  const r = await a.execute(body);
  if (r.status !== 200) throw new Error(`expected 200, got ${r.status}: ${r.text}`);
  return ExecuteResponseSchema.parse(r.body);
}

describe('native', () => {
  it('runs shell with sh -c and reports output, exit code and duration', async () => {
    const r = await run(agent, { command: 'echo out; echo err >&2; echo "zero=$0"', kind: 'shell', method: 'native' });
    expect(r).toMatchObject({ success: true, error: null, exit_code: 0, method: 'native', truncated: false });
    expect(r.output).toContain('out\n');
    expect(r.output).toContain('err\n');
    expect(r.output).toContain('zero=sh\n');
    expect(r.duration_ms).toBeGreaterThan(0);
  });

  it('a failing command is success:false with its exit code', async () => {
    const r = await run(agent, { command: 'echo partial; exit 7', method: 'native' });
    expect(r).toMatchObject({ success: false, exit_code: 7, output: 'partial\n', method: 'native' });
    expect(r.error).toMatch(/exit code 7/);
  });

  it('runs python with the system python', async () => {
    const r = await run(agent, { command: 'import sys\nprint(sys.prefix)\nprint(6*7)', kind: 'python', method: 'native' });
    expect(r.success).toBe(true);
    expect(r.output).toMatch(/\n42\n$/);
    expect(r.output.split('\n')[0]).not.toBe(fs.realpathSync(venvDir));
  });

  it('python exceptions are failures with the traceback in the output', async () => {
    const r = await run(agent, { command: 'raise ValueError("boom")', kind: 'python', method: 'native' });
    expect(r.success).toBe(false);
    expect(r.exit_code).toBe(1);
    expect(r.output).toMatch(/ValueError: boom/);
  });

  it('runs in working_dir', async () => {
    const wd = fs.mkdtempSync(path.join(work, 'wd-'));
    const r = await run(agent, { command: 'pwd; echo hello > made-here.txt', working_dir: wd, method: 'native' });
    expect(r.output.trim()).toBe(fs.realpathSync(wd));
    expect(fs.readFileSync(path.join(wd, 'made-here.txt'), 'utf8')).toBe('hello\n');
    const py = await run(agent, { command: 'import os; print(os.getcwd())', kind: 'python', working_dir: wd, method: 'native' });
    expect(py.output.trim()).toBe(fs.realpathSync(wd));
  });

  it('a missing interpreter is a clear failure, not a crash', async () => {
    const noPython = await startAgent({ env: { D8_PYTHON: '/nonexistent/python3' } });
    try {
      const r = await run(noPython, { command: 'print(1)', kind: 'python', method: 'native' });
      expect(r.success).toBe(false);
      expect(r.exit_code).toBeNull();
      expect(r.error).toMatch(/\/nonexistent\/python3.*not found/);
      const h = HealthResponseSchema.parse((await noPython.request('GET', '/api/health')).body);
      expect(h.python_version).toBeNull();
    } finally {
      await noPython.stop();
    }
  });
});

describe('venv', () => {
  it('health reports venv available and the venv python version', async () => {
    const h = HealthResponseSchema.parse((await agent.request('GET', '/api/health')).body);
    expect(h.execution_methods).toEqual({ docker: false, venv: true, native: true });
    const v = execFileSync(path.join(venvDir, 'bin', 'python'), ['--version'], { encoding: 'utf8' }).trim();
    expect(`Python ${h.python_version}`).toBe(v);
  });

  it('runs python inside the venv', async () => {
    const r = await run(agent, { command: 'import sys; print(sys.prefix); print(sys.prefix != sys.base_prefix)', kind: 'python', method: 'venv' });
    expect(r).toMatchObject({ success: true, method: 'venv' });
    expect(r.output).toBe(`${venvDir}\nTrue\n`);
  });

  it('runs shell with the venv activated', async () => {
    const r = await run(agent, { command: 'echo "$VIRTUAL_ENV"; command -v python', method: 'venv' });
    expect(r.output).toBe(`${venvDir}\n${path.join(venvDir, 'bin', 'python')}\n`);
  });

  it('auto picks venv when docker is unavailable, native when there is no venv either', async () => {
    expect((await run(agent, { command: 'true' })).method).toBe('venv');
    expect((await run(bare, { command: 'true', method: 'auto' })).method).toBe('native');
  });

  it('an explicit unavailable method is a 409 naming the reason', async () => {
    let r = await bare.execute({ command: 'true', method: 'venv' });
    expect(r.status).toBe(409);
    expect(r.body).toEqual({ error: expect.stringMatching(/method venv is not available.*D8_VENV_DIR is not set/), field: 'method' });
    r = await agent.execute({ command: 'true', method: 'docker' });
    expect(r.status).toBe(409);
    expect(r.body.error).toMatch(/method docker is not available/);
  });
});

describe('timeouts', () => {
  it('kill the whole process group: a grandchild cannot outlive the timeout', async () => {
    const wd = fs.mkdtempSync(path.join(work, 'timeout-'));
    const late = path.join(wd, 'grandchild-was-here');
    // The child starts a grandchild (a subshell in the background) that would write a file after the
    // timeout, records its pid, then waits.
    const command = `(sleep 4; echo late > ${late}) & echo $! > ${wd}/grandchild.pid; sleep 60`;
    const started = Date.now();
    const r = await run(agent, { command, method: 'native', timeout_s: 1 });
    const elapsed = Date.now() - started;
    expect(r.success).toBe(false);
    expect(r.exit_code).toBeNull();
    expect(r.error).toMatch(/timed out after 1 s/);
    expect(elapsed).toBeLessThan(30_000);
    const grandchild = Number(fs.readFileSync(path.join(wd, 'grandchild.pid'), 'utf8'));
    expect(grandchild).toBeGreaterThan(0);
    await waitFor(() => !alive(grandchild), 10_000, `grandchild ${grandchild} to be gone`);
    await sleep(5000); // past the moment the grandchild would have written
    expect(fs.existsSync(late)).toBe(false);
  });

  it('python timeouts kill python and its subprocesses too', async () => {
    const wd = fs.mkdtempSync(path.join(work, 'pytimeout-'));
    const code = [
      'import subprocess, time',
      `p = subprocess.Popen(["sh", "-c", "sleep 4; touch ${wd}/late"])`,
      `open("${wd}/pid", "w").write(str(p.pid))`,
      'time.sleep(60)',
    ].join('\n');
    const r = await run(agent, { command: code, kind: 'python', method: 'venv', timeout_s: 1.5 });
    expect(r.error).toMatch(/timed out/);
    const pid = Number(fs.readFileSync(path.join(wd, 'pid'), 'utf8'));
    await waitFor(() => !alive(pid), 10_000, `subprocess ${pid} to be gone`);
    await sleep(5000);
    expect(fs.existsSync(path.join(wd, 'late'))).toBe(false);
  });

  it('a command that finishes in time is not affected by its timeout', async () => {
    const r = await run(agent, { command: 'sleep 0.2; echo done', method: 'native', timeout_s: 30 });
    expect(r).toMatchObject({ success: true, output: 'done\n' });
  });

  it('a background process that keeps the output pipe open does not hold the answer hostage', async () => {
    const started = Date.now();
    const r = await run(agent, { command: 'sleep 30 & echo started', method: 'native', timeout_s: 20 });
    expect(r).toMatchObject({ success: true, output: 'started\n', exit_code: 0 });
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});

describe('output', () => {
  it('is capped at LIMITS.maxOutputBytes with truncated:true', async () => {
    const r = await run(agent, { command: `head -c ${LIMITS.maxOutputBytes * 3} /dev/zero | tr '\\0' a; echo; echo tail-marker`, method: 'native' });
    expect(r.success).toBe(true);
    expect(r.truncated).toBe(true);
    expect(Buffer.byteLength(r.output)).toBe(LIMITS.maxOutputBytes);
    expect(r.output).toMatch(/^a+$/);
    expect(r.output).not.toContain('tail-marker');
  });

  it('exactly at the limit is not truncated', async () => {
    const r = await run(agent, { command: `head -c ${LIMITS.maxOutputBytes} /dev/zero | tr '\\0' b`, method: 'native' });
    expect(r.truncated).toBe(false);
    expect(r.output.length).toBe(LIMITS.maxOutputBytes);
  });

  it('keeps UTF-8 intact', async () => {
    const r = await run(agent, { command: 'print("ñandú 日本 🚀")', kind: 'python', method: 'native' });
    expect(r.output).toBe('ñandú 日本 🚀\n');
  });
});

describe('concurrency', () => {
  it('beyond D8_MAX_CONCURRENCY answers 429 and frees the slot afterwards', async () => {
    const wd = fs.mkdtempSync(path.join(work, 'conc-'));
    // Two long tasks fill both slots; each writes a file when it has started.
    const long = [0, 1].map((i) => bare.execute({ command: `touch ${wd}/started-${i}; sleep 3; echo ok-${i}`, method: 'native', timeout_s: 60 }));
    await waitFor(() => fs.existsSync(path.join(wd, 'started-0')) && fs.existsSync(path.join(wd, 'started-1')), 30_000, 'both tasks to start');
    const third = await bare.execute({ command: `touch ${wd}/third-ran`, method: 'native' });
    expect(third.status).toBe(429);
    expect(third.body.error).toMatch(/busy.*D8_MAX_CONCURRENCY=2/);
    expect(third.headers['retry-after']).toBeDefined();
    expect(fs.existsSync(path.join(wd, 'third-ran'))).toBe(false);
    // Health is never blocked by running tasks.
    expect((await bare.request('GET', '/api/health')).status).toBe(200);
    const done = await Promise.all(long);
    expect(done.map((d) => d.status)).toEqual([200, 200]);
    expect(done.map((d) => d.body.output)).toEqual(['ok-0\n', 'ok-1\n']);
    const after = await bare.execute({ command: 'echo free', method: 'native' });
    expect(after.status).toBe(200);
  });

  it('a client that disconnects cancels its task and frees its slot', async () => {
    const wd = fs.mkdtempSync(path.join(work, 'cancel-'));
    const late = path.join(wd, 'late');
    const req = bare.execute({ command: `echo $$ > ${wd}/pid; sleep 5; touch ${late}`, method: 'native', timeout_s: 60 }, { timeoutMs: 1500 });
    await expect(req).rejects.toThrow(/no answer within 1500 ms/);
    const pid = Number(fs.readFileSync(path.join(wd, 'pid'), 'utf8'));
    await waitFor(() => !alive(pid), 10_000, `cancelled task ${pid} to be gone`);
    await sleep(4500);
    expect(fs.existsSync(late)).toBe(false);
  });
});
