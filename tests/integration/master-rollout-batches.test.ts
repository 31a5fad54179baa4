/**
 * Rollouts in batches of two (issue 14) with the REAL direct deployer on four `host: local` slaves
 * that share one HOME (each its own agent port, installed by the real install.sh, native strategy):
 * two installs of one batch run at once into the same ~/.d8-agent. Two good releases in a row, each
 * canary → [s2, s3] together → s4: every deploy succeeds, the pair's deploys overlap, stages are spaced
 * by healthyForSeconds, and each slave's install log is its own (one slave's log never names another
 * slave's port). The master sweeps at the product's default interval (30 s, retry sweeps of failing
 * slaves every 5 s): a rollout's steps must not wait for full sweeps (three stages finish within three intervals).
 */
import fs from 'fs';
import path from 'path';
import { Fleet, freePort, waitFor, realAgentRepo, stopAgentsUnder } from './master-support/fleet';

jest.setTimeout(900_000);

const HEALTHY_FOR = 3;
/** The product's default sweep interval (each rollout step waiting for a full sweep took about 9 of them). */
const INTERVAL_S = 30;
const NAMES = ['s1', 's2', 's3', 's4'];

describe('rollouts in batches of two on four local slaves sharing one HOME', () => {
  const fleet = new Fleet();
  const slaveHome = path.join(fleet.root, 'slave-home');
  const env = { HOME: slaveHome };
  let git: (...args: string[]) => string;
  let ports: number[];
  let first: string;

  const commitRelease = (note: string): string => {
    fs.writeFileSync(path.join(fleet.repo, 'agent', 'release-note.txt'), `${note}\n`);
    git('add', '-A');
    git('commit', '-q', '-m', note);
    return git('rev-parse', 'HEAD');
  };
  const allAt = (commit: string) => NAMES.every((n) => { const s = fleet.slave(n); return s?.state === 'healthy' && s.commit === commit; });
  const daemonLog = () => path.join(fleet.root, 'daemon-0.log');

  beforeAll(async () => {
    ports = await Promise.all(NAMES.map(() => freePort()));
    fs.mkdirSync(slaveHome);
    git = realAgentRepo(fleet, NAMES.map((name, i) => ({ name, port: ports[i] })), {
      installAttempts: 1, installDelaySeconds: 0,
      rollout: { canary: 1, batchSize: 2, healthyForSeconds: HEALTHY_FOR, maxFailures: 1 },
    });
    first = git('rev-parse', 'HEAD');
  });

  afterAll(async () => {
    await stopAgentsUnder(slaveHome);
    await fleet.cleanup();
  });

  it('updates the pair of a batch at once, every install succeeding, twice in a row', async () => {
    fleet.daemon({ env, tuning: { deadAfter: 2, settleMs: 60_000 }, realDeployer: true, args: ['--interval', String(INTERVAL_S)] });
    await waitFor(() => allAt(first), 400_000, `the first installs (log: ${daemonLog()})`, 500);
    await waitFor(() => NAMES.every((n) => fleet.db().releases.slave('test', n)?.good_commit === first), 30_000, 'the first release recorded as good');

    for (const note of ['second release', 'third release']) {
      const t0 = Date.now();
      const commit = commitRelease(note);
      await waitFor(() => { const r = fleet.db().rollouts.forCommit('test', commit); return r && ['done', 'halted'].includes(r.status) ? r : null; }, 400_000, `the rollout of the ${note} to end (log: ${daemonLog()})`, 300);
      const r = fleet.db().rollouts.forCommit('test', commit)!;
      const took = Date.parse(r.updated_at) - t0;
      const deploys = fleet.db().deploys.list('test', undefined, 500).filter((d) => d.reason === `rollout ${commit.slice(0, 7)}`);
      // On failure: which slave failed and why (the deploy's error names install.sh's verdict).
      expect({ status: r.status, failed: deploys.filter((d) => d.status !== 'ok').map((d) => [d.slave, d.error]) }).toEqual({ status: 'done', failed: [] });
      expect(r.members.map((m) => [m.slave, m.stage, m.status])).toEqual([['s1', 0, 'passed'], ['s2', 1, 'passed'], ['s3', 1, 'passed'], ['s4', 2, 'passed']]);
      expect(deploys.map((d) => d.slave).sort()).toEqual(NAMES);

      const at = (n: string) => { const d = deploys.find((x) => x.slave === n)!; return { start: Date.parse(d.started_at), end: Date.parse(d.finished_at!) }; };
      // The batch's two deploys ran at the same time (each started before the other ended).
      expect(at('s2').start).toBeLessThan(at('s3').end);
      expect(at('s3').start).toBeLessThan(at('s2').end);
      // Each stage starts only after the previous one was healthy for HEALTHY_FOR seconds.
      expect(Math.min(at('s2').start, at('s3').start) - at('s1').end).toBeGreaterThanOrEqual(HEALTHY_FOR * 1000);
      expect(at('s4').start - Math.max(at('s2').end, at('s3').end)).toBeGreaterThanOrEqual(HEALTHY_FOR * 1000);
      // Three stages of a deploy and a 3 s gate each, not a chain of 30 s sweeps.
      expect(took).toBeLessThan(3 * INTERVAL_S * 1000);
      await waitFor(() => allAt(commit), 60_000, `all four at the ${note}`);
    }

    // Each slave's install log is its own: the two installs of a batch never wrote into one file.
    const logs = fs.readdirSync(path.join(slaveHome, '.d8-agent', 'logs'));
    for (const [i, port] of ports.entries()) {
      const own = logs.filter((f) => f.startsWith(`install-${port}-`));
      expect({ slave: NAMES[i], own }).toEqual({ slave: NAMES[i], own: ['install-' + port + '-native-1.log'] });
      const text = fs.readFileSync(path.join(slaveHome, '.d8-agent', 'logs', own[0]), 'utf8');
      for (const other of ports.filter((p) => p !== port)) expect(text).not.toContain(`:${other}/`);
      expect(text).toContain(`127.0.0.1:${port}/api/health`);
    }
    expect(fleet.alerts().filter((a) => a.kind === 'rollout_done')).toHaveLength(2);
    expect(fleet.alerts().filter((a) => a.kind === 'rollout_halted')).toHaveLength(0);
  });
});
