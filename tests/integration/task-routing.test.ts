/**
 * Issue 18 end to end: real agents on loopback with different labels, capabilities and commits, a
 * real `d8 master` with its API, tasks routed with `POST /api/tasks` and `d8 exec --any`. Routing
 * honours every rule, a busy slave loses to an idle one, a behind slave is never chosen, 200
 * concurrent tasks spread over the fit slaves and all complete, malformed tasks get 400 and run nothing.
 */
import fs from 'fs';
import path from 'path';
import { Fleet, freePort, waitFor } from './master-support/fleet';
import { httpRequest, type HttpAnswer } from '../support/agent-process';

jest.setTimeout(300_000);

describe('tasks go to whichever slave fits (real agents, real master)', () => {
  const fleet = new Fleet('route');
  let apiPort = 0;
  const ports: Record<string, number> = {};
  let token = '';
  let markers = '';

  beforeAll(async () => {
    for (const n of ['gpu1', 'gpu2', 'plain', 'old']) ports[n] = await freePort();
    apiPort = await freePort();
    const c = fleet.initRepo([
      { name: 'gpu1', port: ports.gpu1, labels: ['gpu'] },
      { name: 'gpu2', port: ports.gpu2, labels: ['gpu', 'big-disk'] },
      { name: 'plain', port: ports.plain },
      { name: 'old', port: ports.old, labels: ['gpu', 'big-disk'], autoUpdate: 'off' },
    ], { dashboard: { enabled: true, port: apiPort }, requestsApi: { ratePerMinute: 5000 } });
    await fleet.agent('gpu1', ports.gpu1, c.main);
    await fleet.agent('gpu2', ports.gpu2, c.main);
    await fleet.agent('plain', ports.plain, c.main, { D8_PYTHON: '/nonexistent/python3' });
    await fleet.agent('old', ports.old, c.base);
    // Checks that ride out a loaded test machine: the state must not flap to pending while 200 tasks run.
    fleet.daemon({ tuning: { attemptTimeoutMs: 5000, checkDeadlineMs: 10_000, deadAfter: 5 } });
    markers = path.join(fleet.root, 'markers');
    fs.mkdirSync(markers);
    await waitFor(() => ['gpu1', 'gpu2', 'plain'].every((n) => fleet.slave(n)?.state === 'healthy') && fleet.slave('old')?.drift === 'behind', 60_000, 'the fleet checked');
    const out = await fleet.cli(['tokens', 'create', '--name', 'router', '--scope', 'tasks:run', '--json']);
    expect(out.code).toBe(0);
    token = JSON.parse(out.stdout).token;
  });
  afterAll(() => fleet.cleanup());

  const task = (body: unknown): Promise<HttpAnswer> => httpRequest({
    port: apiPort, method: 'POST', path: '/api/tasks', body, timeoutMs: 120_000,
    headers: { Host: `127.0.0.1:${apiPort}`, Authorization: `Bearer ${token}` },
  });

  it('labels and capabilities decide; a behind slave is never chosen; the answer says which and why', async () => {
    for (let i = 0; i < 6; i++) {
      const r = await task({ command: 'echo routed', needs: ['gpu'] });
      expect(r.status).toBe(200);
      expect(['gpu1', 'gpu2']).toContain(r.body.slave);
      expect(r.body.result).toMatchObject({ success: true, exit_code: 0, output: 'routed\n' });
      expect(r.body.why).toMatch(new RegExp(`^${r.body.slave} fits \\(needs gpu\\) and is the least busy`));
    }
    const big = await task({ command: 'true', needs: ['big-disk'] });
    expect(big.body.slave).toBe('gpu2');
    const py = await task({ command: 'import sys; print(sys.version_info[0])', kind: 'python', needs: ['python'] });
    expect(py.status).toBe(200);
    expect(py.body.slave).not.toBe('plain');
    expect(py.body.result.output).toBe('3\n');
    const none = await task({ command: 'true', needs: ['venv', 'big-disk'] });
    expect(none.status).toBe(409);
    expect(none.body.unfit).toEqual([
      { slave: 'gpu1', missing: ['venv', 'label big-disk'] },
      { slave: 'gpu2', missing: ['venv'] },
      { slave: 'plain', missing: ['venv', 'label big-disk'] },
      { slave: 'old', missing: ['healthy (it is version_mismatch)', 'the master\'s commit (drift behind)', 'venv'] },
    ]);
    expect(none.body.error).toMatch(/^no slave fits this task \(needs venv, big-disk\): gpu1 lacks venv, label big-disk; gpu2 lacks venv;/);
  });

  it('a busy slave (a long task running) loses to an idle one, whichever it is', async () => {
    for (const [busy, idle] of [['gpu1', 'gpu2'], ['gpu2', 'gpu1']]) {
      const long = httpRequest({ port: ports[busy], method: 'POST', path: '/api/execute', body: { command: 'sleep 4' }, headers: { Authorization: `Bearer ${fleet.token}` }, timeoutMs: 30_000 });
      await waitFor(async () => (await httpRequest({ port: ports[busy], method: 'GET', path: '/api/health' })).body.running_executions === 1, 10_000, `${busy} running the long task`);
      await new Promise((r) => setTimeout(r, 300)); // the router reads an agent's health at most 250 ms old
      for (let i = 0; i < 3; i++) {
        const r = await task({ command: 'true', needs: ['gpu'] });
        expect(r.body.slave).toBe(idle);
        expect(r.body.why).toContain(`other fit slaves: ${busy} 1`);
      }
      expect((await long).status).toBe(200);
    }
  });

  it('200 concurrent routed tasks spread over the fit slaves and all complete; the behind one gets none', async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => task({ command: `echo ${i}` })));
    expect(answers.filter((a) => a.status !== 200).map((a) => [a.status, a.body])).toEqual([]);
    answers.forEach((a, i) => expect(a.body.result.output).toBe(`${i}\n`));
    const per: Record<string, number> = {};
    for (const a of answers) per[a.body.slave] = (per[a.body.slave] ?? 0) + 1;
    expect(Object.keys(per).sort()).toEqual(['gpu1', 'gpu2', 'plain']);
    for (const n of ['gpu1', 'gpu2', 'plain']) expect(per[n]).toBeGreaterThanOrEqual(20);
  });

  it('malformed tasks get 400 naming the field and run nothing', async () => {
    const touch = (n: number) => `touch ${markers}/ran-${n}`;
    const bad: Array<[unknown, string]> = [
      [{ command: touch(1), needs: ['GPU'] }, 'needs.0'],
      [{ command: touch(2), needs: 'gpu' }, 'needs'],
      [{ command: touch(3), slave: 'gpu1' }, 'slave'],
      [{ command: touch(4), timeout_s: -1 }, 'timeout_s'],
      [{ command: touch(5), kind: 'ruby' }, 'kind'],
      [{ command: touch(6), method: 'gpu' }, 'method'],
      [{ command: touch(7), retry_on_other: 'yes' }, 'retry_on_other'],
      [{ command: '' }, 'command'],
      [{ needs: ['gpu'] }, 'command'],
    ];
    for (const [body, field] of bad) {
      const r = await task(body);
      expect([r.status, r.body.field]).toEqual([400, field]);
    }
    const notJson = await task('{"command": "touch x"');
    expect(notJson.status).toBe(400);
    const noScope = await fleet.cli(['tokens', 'create', '--name', 'reader', '--scope', 'requests:read', '--json']);
    const denied = await httpRequest({ port: apiPort, method: 'POST', path: '/api/tasks', body: { command: touch(8) }, headers: { Host: `127.0.0.1:${apiPort}`, Authorization: `Bearer ${JSON.parse(noScope.stdout).token}` } });
    expect(denied.status).toBe(403);
    await new Promise((r) => setTimeout(r, 500));
    expect(fs.readdirSync(markers)).toEqual([]);
  });

  it('d8 exec --any: the CLI routes too, says where and why, and exits 5 naming what is missing', async () => {
    const ok = await fleet.cli(['exec', '--any', '--needs', 'big-disk', '--stack', 'route', '--repo', fleet.repo, '--', 'echo', 'from-cli']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('from-cli\n');
    expect(ok.stderr).toMatch(/^d8: ran on gpu2: gpu2 fits \(needs big-disk\)/m);
    const json = await fleet.cli(['exec', '--any', '--json', '--stack', 'route', '--repo', fleet.repo, '--', 'exit', '3']);
    expect(json.code).toBe(3);
    expect(['gpu1', 'gpu2', 'plain']).toContain(JSON.parse(json.stdout).slave);
    const none = await fleet.cli(['exec', '--any', '--needs', 'tpu', '--stack', 'route', '--repo', fleet.repo, '--', 'true']);
    expect(none.code).toBe(5);
    expect(none.stderr).toMatch(/no slave fits this task \(needs tpu\): gpu1 lacks label tpu; gpu2 lacks label tpu; plain lacks label tpu; old lacks .*drift behind/);
    const usage = await fleet.cli(['exec', '--needs', 'gpu', '--stack', 'route', '--repo', fleet.repo, 'gpu1', '--', 'true']);
    expect(usage.code).toBe(1);
    expect(usage.stderr).toMatch(/--needs and --retry-on-other go with --any/);
  });

  it('never a slave mid-deploy: a running deploy takes it out until it ends', async () => {
    const id = fleet.db().deploys.start('route', 'gpu2', 'direct', 'test: a deploy in flight');
    try {
      await new Promise((r) => setTimeout(r, 300));
      const r = await task({ command: 'true', needs: ['big-disk'] });
      expect(r.status).toBe(409);
      expect(r.body.unfit).toContainEqual({ slave: 'gpu2', missing: ['no deploy running (one is)'] });
    } finally {
      fleet.db().deploys.fail(id, 'test over');
    }
    await new Promise((r) => setTimeout(r, 300));
    expect((await task({ command: 'true', needs: ['big-disk'] })).body.slave).toBe('gpu2');
  });

  it('a slave that fails mid-task is not retried silently; retry_on_other sends an idempotent task to the next fit slave', async () => {
    const killGpu2Soon = async (): Promise<void> => {
      await waitFor(async () => (await httpRequest({ port: ports.gpu2, method: 'GET', path: '/api/health' })).body.running_executions === 1, 20_000, 'gpu2 running the task');
      process.kill(Number(fs.readFileSync(path.join(fleet.agentsDir, 'gpu2.pid'), 'utf8')), 'SIGKILL');
    };
    const [failed] = await Promise.all([task({ command: `sleep 5; touch ${markers}/late`, needs: ['big-disk'] }), killGpu2Soon()]);
    expect(failed.status).toBe(502);
    expect(failed.body.slave).toBe('gpu2');
    expect(failed.body.error).toMatch(/^the task failed on gpu2 \(execute failed: .*\); it was not retried elsewhere: pass retry_on_other/);
    // The daemon brings gpu2 back (spawn deployer); then the same with retry_on_other: gpu1 (busy, so second choice) takes over.
    await waitFor(async () => (await httpRequest({ port: ports.gpu2, method: 'GET', path: '/api/health' }).catch(() => null))?.status === 200 && fleet.slave('gpu2')?.state === 'healthy', 90_000, 'gpu2 back');
    const long = httpRequest({ port: ports.gpu1, method: 'POST', path: '/api/execute', body: { command: 'sleep 6' }, headers: { Authorization: `Bearer ${fleet.token}` }, timeoutMs: 30_000 });
    await waitFor(async () => (await httpRequest({ port: ports.gpu1, method: 'GET', path: '/api/health' })).body.running_executions === 1, 10_000, 'gpu1 busy');
    await new Promise((r) => setTimeout(r, 300));
    const [retried] = await Promise.all([task({ command: 'sleep 2; echo done', needs: ['gpu'], retry_on_other: true }), killGpu2Soon()]);
    expect(retried.status).toBe(200);
    expect(retried.body.slave).toBe('gpu1');
    expect(retried.body.failed).toEqual([{ slave: 'gpu2', error: expect.stringMatching(/^execute failed:/) }]);
    expect(retried.body.result.output).toBe('done\n');
    await long;
  });
});
