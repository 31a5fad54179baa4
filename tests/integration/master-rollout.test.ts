/**
 * Safe rollouts (issue 14) with the REAL direct deployer on four `host: local` slaves (each its own
 * agent port, installed by the real install.sh, native strategy, under a temp HOME):
 *  - a genuinely bad release (its agent exits at start-up): the canary is updated, fails, is rolled
 *    back to the kept previous release and is healthy again; the other three never ran it; one
 *    rollout_halted alert and one request;
 *  - a good release: canary, then batches, all at the new commit, stages spaced by healthyForSeconds;
 *  - the master SIGKILLed mid-rollout and restarted: the rollout resumes, nothing is deployed twice.
 */
import fs from 'fs';
import path from 'path';
import { Fleet, freePort, waitFor, sleep, realAgentRepo, stopAgentsUnder } from './master-support/fleet';

jest.setTimeout(900_000);

const HEALTHY_FOR = 3;
const NAMES = ['s1', 's2', 's3', 's4'];

describe('rollouts with the real direct deployer on four local slaves', () => {
  const fleet = new Fleet();
  const slaveHome = path.join(fleet.root, 'slave-home');
  const env = { HOME: slaveHome };
  let git: (...args: string[]) => string;
  const mainTs = () => path.join(fleet.repo, 'agent', 'main.ts');
  let goodMain: string;
  let first: string;

  const commitAll = (msg: string): string => { git('add', '-A'); git('commit', '-q', '-m', msg); return git('rev-parse', 'HEAD'); };
  const rolloutDeploys = (commit: string) => fleet.db().deploys.list('test', undefined, 500).filter((d) => d.reason === `rollout ${commit.slice(0, 7)}`);
  const allAt = (commit: string) => NAMES.every((n) => { const s = fleet.slave(n); return s?.state === 'healthy' && s.commit === commit; });

  beforeAll(async () => {
    const ports = await Promise.all(NAMES.map(() => freePort()));
    fs.mkdirSync(slaveHome);
    git = realAgentRepo(fleet, NAMES.map((name, i) => ({ name, port: ports[i] })), {
      installAttempts: 1, installDelaySeconds: 0,
      // batchSize 1: the four local slaves share one HOME, where concurrent install.sh runs are not yet safe.
      rollout: { canary: 1, batchSize: 1, healthyForSeconds: HEALTHY_FOR, maxFailures: 1 },
    });
    goodMain = fs.readFileSync(mainTs(), 'utf8');
    first = git('rev-parse', 'HEAD');
  });

  afterAll(async () => {
    await stopAgentsUnder(slaveHome);
    await fleet.cleanup();
  });

  it('halts a bad release at the canary, rolls it back, then rolls a good one out in gated stages and resumes after a SIGKILL', async () => {
    let d = fleet.daemon({ env, tuning: { deadAfter: 2, settleMs: 60_000 }, realDeployer: true });
    await waitFor(() => allAt(first), 400_000, `the first installs (log: ${path.join(fleet.root, 'daemon-0.log')})`, 500);
    await waitFor(() => NAMES.every((n) => fleet.db().releases.slave('test', n)?.good_commit === first), 30_000, 'the first release recorded as good');
    expect(fleet.db().releases.get('test', first)).not.toBeNull();

    // A genuinely bad release: its agent exits at start-up.
    fs.writeFileSync(mainTs(), `console.error('this release is broken'); process.exit(3);\n${goodMain}`);
    const bad = commitAll('bad release');
    await waitFor(() => fleet.db().rollouts.forCommit('test', bad)?.status === 'halted', 300_000, 'the bad rollout to halt', 500);
    const halted = fleet.db().rollouts.forCommit('test', bad)!;
    expect(halted.members.map((m) => [m.slave, m.stage, m.status])).toEqual([['s1', 0, 'rolled_back'], ['s2', 1, 'pending'], ['s3', 2, 'pending'], ['s4', 3, 'pending']]);
    // Healthy at the previous release: its agent answers and reports it (behind the master, so version_mismatch).
    await waitFor(() => fleet.slave('s1')?.state === 'version_mismatch' && fleet.slave('s1')?.commit === first, 60_000, 's1 answering at the previous release');
    const deploys = fleet.db().deploys.list('test', undefined, 500);
    expect(deploys.filter((x) => x.reason === `rollout ${bad.slice(0, 7)}`).map((x) => [x.slave, x.status])).toEqual([['s1', 'failed']]);
    expect(deploys.filter((x) => x.reason.startsWith('rollback')).map((x) => [x.slave, x.status, x.commit])).toEqual([['s1', 'ok', first]]);
    // The other three never ran the bad commit: no deploy of it, no check ever saw it.
    for (const n of ['s2', 's3', 's4']) {
      expect(deploys.filter((x) => x.slave === n && x.reason !== 'dead')).toEqual([]);
      const seen = fleet.db().db.prepare('SELECT COUNT(*) AS n FROM check_history WHERE slave = ? AND commit_sha = ?').get(n, bad) as { n: number };
      expect(seen.n).toBe(0);
      expect(fleet.slave(n)).toMatchObject({ state: 'version_mismatch', drift: 'behind', commit: first });
    }
    await sleep(3000); // later sweeps must not alert or ask again
    const haltAlerts = fleet.alerts().filter((a) => a.kind === 'rollout_halted');
    expect(haltAlerts).toHaveLength(1);
    expect(haltAlerts[0].data).toMatchObject({ commit: bad, stage: 0, untouched: ['s2', 's3', 's4'], request_id: halted.request_id, failed: [{ slave: 's1', rolled_back_to: first, rollback_ok: true }] });
    const reqs = fleet.db().requests.list({});
    expect(reqs.map((r) => r.title)).toEqual([`retry the rollout of ${bad.slice(0, 7)}?`]);
    expect(halted.request_id).toBe(reqs[0].id);

    // What a person sees: d8 rollout status, d8 status, d8 releases; a halted rollout cannot be paused.
    const st = await fleet.cli(['rollout', 'status', '--stack', 'test', '--repo', fleet.repo, '--json']);
    expect(st.code).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ commit: bad, status: 'halted', rolled_back: ['s1'], pending: ['s2', 's3', 's4'], request_id: halted.request_id });
    const text = await fleet.cli(['status', '--stack', 'test', '--repo', fleet.repo]);
    expect(text.stdout).toContain(`rollout ${halted.id} of ${bad.slice(0, 7)}: halted, stage 1/4 · pending s2, s3, s4 · rolled back s1 · retry? d8 requests approve ${halted.request_id}`);
    const pause = await fleet.cli(['rollout', 'pause', '--stack', 'test', '--repo', fleet.repo]);
    expect(pause.code).toBe(1);
    expect(pause.stderr).toContain('is halted: it can be paused only when running');
    const rel = JSON.parse((await fleet.cli(['releases', '--stack', 'test', '--repo', fleet.repo, '--json'])).stdout) as Array<{ commit: string; running_on: string[]; last_good_for: string[] }>;
    expect(rel.find((r) => r.commit === first)).toMatchObject({ running_on: NAMES, last_good_for: NAMES });
    expect(rel.find((r) => r.commit === bad)).toMatchObject({ running_on: [], last_good_for: [] });
    // Rejected: the rollout stays put, nobody is updated to the bad commit by the per-slave policy either.
    expect((await fleet.cli(['requests', 'reject', halted.request_id!, 'not', 'now'])).code).toBe(0);
    await waitFor(() => fleet.db().rollouts.forCommit('test', bad)?.status === 'rejected', 30_000, 'the rollout rejected');
    await sleep(3000);
    expect(fleet.db().deploys.list('test', undefined, 500).length).toBe(deploys.length);

    // A good release: canary, then the batches, each after the previous stage was healthy for HEALTHY_FOR s.
    fs.writeFileSync(mainTs(), goodMain);
    fs.writeFileSync(path.join(fleet.repo, 'agent', 'release-note.txt'), 'good\n');
    const good = commitAll('good release');
    // Paused after the canary's deploy: no batch starts until resumed.
    await waitFor(() => fleet.db().rollouts.forCommit('test', good)?.members.find((m) => m.slave === 's1')?.status === 'gate', 300_000, 'the good canary in its gate', 100);
    expect((await fleet.cli(['rollout', 'pause', '--stack', 'test', '--repo', fleet.repo])).code).toBe(0);
    await sleep((HEALTHY_FOR + 3) * 1000);
    expect(fleet.db().rollouts.forCommit('test', good)).toMatchObject({ status: 'paused', stage: 0 });
    expect(rolloutDeploys(good).map((x) => x.slave)).toEqual(['s1']);
    expect((await fleet.cli(['rollout', 'resume', '--stack', 'test', '--repo', fleet.repo])).code).toBe(0);
    await waitFor(() => fleet.db().rollouts.forCommit('test', good)?.status === 'done', 400_000, 'the good rollout to finish', 500);
    expect(fleet.db().rollouts.forCommit('test', bad)?.status).toBe('aborted');
    await waitFor(() => allAt(good), 60_000, 'all four at the good commit');
    const byStage = (commit: string) => {
      const rows = rolloutDeploys(commit);
      const r = fleet.db().rollouts.forCommit('test', commit)!;
      return [0, 1, 2, 3].map((st) => rows.filter((x) => r.members.find((m) => m.slave === x.slave)!.stage === st));
    };
    const stages = byStage(good);
    expect(stages.map((s) => s.map((x) => x.slave).sort())).toEqual([['s1'], ['s2'], ['s3'], ['s4']]);
    for (let i = 1; i < 4; i++) {
      const prevEnd = Math.max(...stages[i - 1].map((x) => Date.parse(x.finished_at!)));
      const start = Math.min(...stages[i].map((x) => Date.parse(x.started_at)));
      expect(start - prevEnd).toBeGreaterThanOrEqual(HEALTHY_FOR * 1000);
    }
    expect(fleet.alerts().filter((a) => a.kind === 'rollout_done')).toHaveLength(1);

    // SIGKILL mid-rollout: the restarted master resumes from the recorded stage, deploying nobody twice.
    fs.writeFileSync(path.join(fleet.repo, 'agent', 'release-note.txt'), 'third\n');
    const third = commitAll('third release');
    await waitFor(() => { const r = fleet.db().rollouts.forCommit('test', third); return r && r.stage === 1 && r.members.filter((m) => m.stage === 1).every((m) => m.status === 'gate'); }, 300_000, 'stage 1 in its gate', 100);
    d.child.kill('SIGKILL');
    await new Promise((r) => d.child.once('exit', r));
    const atKill = fleet.db().rollouts.forCommit('test', third)!;
    d = fleet.daemon({ env, tuning: { deadAfter: 2, settleMs: 60_000 }, realDeployer: true });
    await waitFor(() => fleet.db().rollouts.forCommit('test', third)?.status === 'done', 400_000, 'the resumed rollout to finish', 500);
    await waitFor(() => allAt(third), 60_000, 'all four at the third commit');
    const thirdDeploys = rolloutDeploys(third);
    expect(thirdDeploys.map((x) => x.slave).sort()).toEqual(NAMES);
    expect(thirdDeploys.every((x) => x.status === 'ok')).toBe(true);
    expect(atKill.members.find((m) => m.slave === 's1')!.status).toBe('passed');

    // A release that installs, answers, then dies within the gate (a flap): rolled back to the third release.
    fs.writeFileSync(mainTs(), `setTimeout(() => process.exit(4), 2500);\n${goodMain}`);
    const flap = commitAll('flapping release');
    await waitFor(() => fleet.db().rollouts.forCommit('test', flap)?.status === 'halted', 300_000, 'the flapping rollout to halt', 500);
    const flapped = fleet.db().rollouts.forCommit('test', flap)!;
    expect(flapped.members.map((m) => [m.slave, m.status])).toEqual([['s1', 'rolled_back'], ['s2', 'pending'], ['s3', 'pending'], ['s4', 'pending']]);
    // It was installed (the deploy succeeded) and failed the gate afterwards.
    expect(rolloutDeploys(flap).map((x) => [x.slave, x.status])).toEqual([['s1', 'ok']]);
    expect(flapped.members[0].error).toMatch(/during the health gate/);
    await waitFor(() => fleet.slave('s1')?.commit === third && fleet.slave('s1')?.state === 'version_mismatch', 60_000, 's1 back at the third release');
    expect(fleet.alerts().filter((a) => a.kind === 'rollout_halted')).toHaveLength(2);
    // Approved: the rollout starts again from the failed canary (which flaps again and is rolled back again).
    expect((await fleet.cli(['requests', 'approve', flapped.request_id!])).code).toBe(0);
    await waitFor(() => { const r = fleet.db().rollouts.forCommit('test', flap)!; return r.status === 'halted' && r.request_id !== flapped.request_id && r.request_id; }, 300_000, 'the retried rollout to halt again', 500);
    expect(rolloutDeploys(flap).map((x) => x.slave)).toEqual(['s1', 's1']);
    expect(fleet.db().requests.get(flapped.request_id!).status).toBe('COMPLETED');
    await waitFor(() => fleet.slave('s1')?.commit === third, 60_000, 's1 back at the third release again');
    expect(fleet.alerts().filter((a) => a.kind === 'rollout_halted')).toHaveLength(3);
    expect(d.log()).not.toContain(fleet.token);
  });
});
