/**
 * Method docker against the real Docker engine and the locally built d8-base:bookworm image.
 * Needs infrastructure: skipped outside CI (one line), failing in CI, when it is missing.
 */
import { execFileSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { ExecuteResponseSchema, HealthResponseSchema, type ExecuteResponse } from '../../core/protocol';
import { describeTier } from '../support/tier';
import { AgentHandle, makeTempDir, sleep, startAgent, waitFor } from '../support/agent-process';

jest.setTimeout(240_000);

const IMAGE = 'd8-base:bookworm';

function dockerMissing(): string | null {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'pipe', timeout: 20_000 });
  } catch {
    return 'no reachable Docker engine (docker info failed)';
  }
  try {
    execFileSync('docker', ['image', 'inspect', IMAGE], { stdio: 'pipe', timeout: 20_000 });
  } catch {
    return `the image ${IMAGE} does not exist`;
  }
  return null;
}

function containers(filter: string): string[] {
  return execFileSync('docker', ['ps', '-a', '--filter', filter, '--format', '{{.Names}}'], { encoding: 'utf8' })
    .split('\n').filter(Boolean);
}

describeTier(
  { tier: 'docker', missing: dockerMissing, enable: 'install docker.io, start dockerd, then run scripts/docker-base-image.sh' },
  'agent: method docker',
  () => {
    let agent: AgentHandle;
    let work: string;
    beforeAll(async () => {
      work = makeTempDir('d8-agent-docker-');
      agent = await startAgent({ env: { D8_TASK_IMAGE: IMAGE } });
    });
    afterAll(async () => {
      await agent?.stop();
      fs.rmSync(work, { recursive: true, force: true });
    });

    async function run(body: Record<string, unknown>): Promise<ExecuteResponse> {
      const r = await agent.execute(body);
      if (r.status !== 200) throw new Error(`expected 200, got ${r.status}: ${r.text}`);
      return ExecuteResponseSchema.parse(r.body);
    }

    it('health reports docker available, and auto prefers it', async () => {
      const h = HealthResponseSchema.parse((await agent.request('GET', '/api/health')).body);
      expect(h.execution_methods.docker).toBe(true);
      const r = await run({ command: 'cat /etc/debian_version' });
      expect(r.method).toBe('docker');
      expect(r.output).toMatch(/^12\./);
    });

    it('runs shell and python inside a container, not on the host', async () => {
      const hostMarker = path.join(work, 'host-only');
      fs.writeFileSync(hostMarker, '');
      const sh = await run({ command: `test -e ${hostMarker} && echo visible || echo isolated; exit 3`, method: 'docker' });
      expect(sh).toMatchObject({ success: false, exit_code: 3, method: 'docker', output: 'isolated\n' });
      const py = await run({ command: 'import sys, os; print(sys.version_info[0], os.path.exists("/.dockerenv"))', kind: 'python', method: 'docker' });
      expect(py).toMatchObject({ success: true, output: '3 True\n' });
    });

    it('mounts working_dir and runs there', async () => {
      const wd = fs.mkdtempSync(path.join(work, 'wd-'));
      const r = await run({ command: 'pwd; echo from-container > out.txt', method: 'docker', working_dir: wd });
      expect(r.output.trim()).toBe(wd);
      expect(fs.readFileSync(path.join(wd, 'out.txt'), 'utf8')).toBe('from-container\n');
    });

    it('a timeout kills the container', async () => {
      const before = new Set(containers('label=d8.task=1'));
      const started = Date.now();
      const r = await run({ command: 'sleep 120', method: 'docker', timeout_s: 3 });
      expect(r.error).toMatch(/timed out after 3 s/);
      expect(Date.now() - started).toBeLessThan(60_000);
      await waitFor(() => containers('label=d8.task=1').filter((c) => !before.has(c)).length === 0, 30_000, 'the task container to be removed');
      await sleep(2500); // the agent removes the container once more, in case it was created late
      expect(containers('label=d8.task=1').filter((c) => !before.has(c))).toEqual([]);
    });
  },
);
