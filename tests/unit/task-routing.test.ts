/** master/tasks/choose.ts: which slave a routed task goes to (pure). */
import { choose, missing, type Candidate } from '../../master/tasks/choose';
import { HealthResponseSchema } from '../../core/protocol';
import { RoutedTaskRequestSchema } from '../../core/tasks';

const health = (over: Record<string, unknown> = {}) => HealthResponseSchema.parse({
  status: 'ok', branch: 'main', commit: 'c', version: '1', deployed_at: 'x', uptime_s: 1, hostname: 'h', node_version: '20', python_version: '3.11',
  execution_methods: { docker: false, venv: true, native: true }, install_strategy: 'venv', update_pending: false, update_failed: false,
  running_executions: 0, max_concurrency: 4, arch: 'x64', ...over,
});
const cand = (name: string, over: Partial<Candidate> = {}): Candidate => ({
  name, state: 'healthy', drift: 'equal', deploying: false, labels: [], health: health(), latencyMs: 5, inflight: 0, ...over,
});

describe('choose', () => {
  it('never a slave that is not healthy, not at the master\'s commit, deploying or silent, and says why', () => {
    const c = choose([
      cand('dead', { state: 'dead' }),
      cand('behind', { state: 'version_mismatch', drift: 'behind' }),
      cand('busy-deploying', { deploying: true }),
      cand('silent', { health: null }),
    ], []);
    expect(c).toEqual({ kind: 'none', unfit: [
      { slave: 'dead', missing: ['healthy (it is dead)'] },
      { slave: 'behind', missing: ['healthy (it is version_mismatch)', 'the master\'s commit (drift behind)'] },
      { slave: 'busy-deploying', missing: ['no deploy running (one is)'] },
      { slave: 'silent', missing: ['an agent that answers /api/health'] },
    ] });
  });

  it('labels and capabilities: every need must be there', () => {
    const gpu = cand('gpu', { labels: ['gpu'], health: health({ execution_methods: { docker: true, venv: false, native: true } }) });
    const plain = cand('plain', { health: health({ python_version: null, arch: 'arm64' }) });
    expect(missing(plain, ['gpu', 'python', 'venv', 'docker', 'arch:x64'])).toEqual(['label gpu', 'python', 'docker', 'arch:x64 (it is arm64)']);
    expect(missing(gpu, ['gpu', 'docker', 'python'])).toEqual([]);
    expect(choose([plain, gpu], ['gpu'])).toMatchObject({ kind: 'chosen', slave: 'gpu' });
    expect(choose([plain, gpu], ['venv'])).toMatchObject({ kind: 'chosen', slave: 'plain' });
    expect(choose([plain, gpu], ['tpu'])).toEqual({ kind: 'none', unfit: [{ slave: 'plain', missing: ['label tpu'] }, { slave: 'gpu', missing: ['label tpu'] }] });
  });

  it('the least busy wins (agent-reported or own in-flight, whichever is higher); latency breaks ties; a full slave waits', () => {
    const a = cand('a', { latencyMs: 1, health: health({ running_executions: 2 }) });
    const b = cand('b', { latencyMs: 50 });
    const r = choose([a, b], []);
    expect(r).toMatchObject({ kind: 'chosen', slave: 'b' });
    expect(r.kind === 'chosen' && r.why).toBe('b fits and is the least busy: 0 running of 4, 50 ms latency; other fit slaves: a 2');
    expect(choose([cand('a', { latencyMs: 1 }), cand('b', { latencyMs: 50 })], [])).toMatchObject({ slave: 'a' });
    expect(choose([cand('a', { latencyMs: 1, inflight: 3 }), cand('b', { latencyMs: 50, inflight: 1 })], [])).toMatchObject({ slave: 'b' });
    expect(choose([cand('a', { inflight: 4 }), cand('b', { health: health({ running_executions: 4 }) })], [])).toEqual({ kind: 'all_full', fit: ['a', 'b'] });
    expect(choose([cand('a'), cand('b', { latencyMs: 9 })], [], new Set(['a']))).toMatchObject({ kind: 'chosen', slave: 'b' });
  });

  it('the task contract refuses what would be a typo', () => {
    expect(RoutedTaskRequestSchema.safeParse({ command: 'x', needs: ['GPU'] }).success).toBe(false);
    expect(RoutedTaskRequestSchema.safeParse({ command: 'x', slave: 'pc' }).success).toBe(false);
    expect(RoutedTaskRequestSchema.parse({ command: 'x' })).toMatchObject({ needs: [], retry_on_other: false, kind: 'shell', method: 'auto' });
  });
});
