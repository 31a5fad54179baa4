/**
 * A token rotated while the daemon runs is scrubbed from the daemon's logs and alerts, although the
 * daemon built its redactors at start (issue 13). Real daemon, real agents, real `d8 rotate-token`:
 * slave a's agent keeps its own token in a token file; after the rotation, something else takes over
 * slave b's port and answers every request with an error whose text carries a's new token (it stands
 * for any text reaching the daemon that holds a secret: a task's output, a misbehaving program). The
 * daemon logs b's state change, alerts b dead and escalates its recovery (no SSH key) to a human
 * request, each with that text: the token must be `***` in all of them.
 */
import fs from 'fs';
import http from 'http';
import path from 'path';
import { SlaveTokens } from '../../core/slave-tokens';
import { Fleet, freePort, waitFor } from './master-support/fleet';
import { strongToken, type AgentHandle } from '../support/agent-process';

jest.setTimeout(120_000);

describe('slave tokens rotated under a running daemon', () => {
  const fleet = new Fleet();
  let foreign: http.Server | null = null;
  let b: AgentHandle;
  let daemon: ReturnType<Fleet['daemon']>;
  const ports = { a: 0, b: 0 };
  const tokens = new SlaveTokens(path.join(fleet.home, 'tokens'), 'test');

  beforeAll(async () => {
    ports.a = await freePort();
    ports.b = await freePort();
    // b is a remote slave without an SSH key: the daemon can restart its agent but never redeploys it.
    const commits = fleet.initRepo([{ name: 'a', port: ports.a }, { name: 'b', port: ports.b, host: '127.0.0.1', user: 'nobody' }]);
    const first = strongToken();
    tokens.write('a', { current: first, previous: null, installed: true });
    const tokenFile = path.join(fleet.root, 'a-agent-token');
    fs.writeFileSync(tokenFile, `${first}\n`, { mode: 0o600 });
    await fleet.agent('a', ports.a, commits.main, { D8_AGENT_TOKEN: '', D8_AGENT_TOKEN_FILE: tokenFile });
    b = await fleet.agent('b', ports.b, commits.main);
    daemon = fleet.daemon({ tuning: { deadAfter: 2, recoveryAttempts: 1 } });
  });

  afterAll(async () => {
    await new Promise((r) => (foreign ? foreign.close(r) : r(undefined)));
    await fleet.cleanup();
  });

  it("scrubs a's new token from the daemon's log lines and alerts", async () => {
    for (const s of ['a', 'b']) await waitFor(() => fleet.slave(s)?.state === 'healthy', 30_000, `${s} healthy`, 200);
    const r = await fleet.cli(['rotate-token', 'a', '--stack', 'test', '--dir', fleet.repo]);
    expect({ code: r.code, out: r.stdout, err: r.stderr }).toEqual({ code: 0, out: 'a: rotated (new token of its own)\n', err: '' });
    const rotated = tokens.read('a')!.current;

    await b.stop();
    foreign = http.createServer((_req, res) => {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: `disk full; last key ${rotated}` }));
    });
    await new Promise<void>((resolve) => foreign!.listen(ports.b, '127.0.0.1', resolve));

    await waitFor(() => fleet.alerts('b').some((x) => x.kind === 'recovery_failed'), 60_000, 'b dead and its recovery escalated', 250);
    const alerts = JSON.stringify(fleet.alerts('b'));
    const log = daemon.log();
    // The text did reach both, and the daemon's state change, restart and escalation lines carry it.
    expect(alerts).toContain('disk full; last key ***');
    expect(log).toContain('disk full; last key ***');
    expect(log).toMatch(/b: healthy -> \w+/);
    expect(alerts).not.toContain(rotated);
    expect(log).not.toContain(rotated);
    // The escalation's human request (d8 requests, the dashboard) quotes the same error.
    const requests = fleet.db().requests.list();
    expect(requests.map((q) => q.description).join('\n')).toContain('disk full; last key ***');
    expect(JSON.stringify(requests)).not.toContain(rotated);
  });
});
