/**
 * Issue 25, first slice: the channel the master holds to each agent (GET /api/channel), between real
 * agent processes and the master's own client and ChannelWatch: health at once and on change,
 * heartbeats, its limits, and a death (SIGKILL, a hung agent, a stop) told within a second or two
 * heartbeats, then a reconnect to the agent that comes back.
 */
import fs from 'fs';
import path from 'path';
import type http from 'http';
import { AgentClient, AgentCallError, type AgentTarget } from '../../master/agent-client';
import { ChannelWatch } from '../../master/channel/channel-watch';
import { ChannelLineSchema, LIMITS, type ChannelLine } from '../../core/protocol';
import { resolveFleetConfig, type SlaveConfig } from '../../core/stack-config';
import { createLogger } from '../../core/logger';
import { AgentHandle, makeTempDir, startAgent } from '../support/agent-process';

jest.setTimeout(60_000);

const target = (a: AgentHandle): AgentTarget => ({ agentHost: a.host, agentPort: a.port, tlsFingerprint: a.tlsFingerprint });

/** Reads the stream's lines as they come, each parsed with the protocol's schema. */
function lines(res: http.IncomingMessage): { seen: Array<{ at: number; line: ChannelLine }>; ended: Promise<void> } {
  const seen: Array<{ at: number; line: ChannelLine }> = [];
  let buf = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => {
    buf += c;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      seen.push({ at: Date.now(), line: ChannelLineSchema.parse(JSON.parse(buf.slice(0, nl))) });
      buf = buf.slice(nl + 1);
    }
  });
  const ended = new Promise<void>((resolve) => { res.once('close', () => resolve()); res.once('error', () => resolve()); });
  return { seen, ended };
}

async function until<T>(f: () => T | null | undefined | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('GET /api/channel on a real agent', () => {
  let agent: AgentHandle;
  let stateDir: string;
  const client = new AgentClient({ maxSockets: 2 * LIMITS.maxChannels }); // its pool must not be what limits the channels
  beforeAll(async () => {
    stateDir = makeTempDir('d8-channel-state-');
    agent = await startAgent({ env: { D8_STATE_DIR: stateDir } });
  });
  afterAll(async () => {
    client.close();
    await agent.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it('health at once, a heartbeat every `every` seconds, and health again when it changes', async () => {
    const res = await client.openChannel(target(agent), agent.token, 1);
    expect(res.headers['content-type']).toBe('application/x-ndjson');
    const { seen } = lines(res);
    const first = await until(() => seen[0], 2000, 'the first line');
    expect(first.line).toMatchObject({ kind: 'health', health: { status: 'ok', commit: agent.version?.commit, update_pending: false } });
    await until(() => seen.length >= 3, 3500, 'two heartbeats');
    expect(seen.slice(1, 3).map((s) => s.line.kind)).toEqual(['heartbeat', 'heartbeat']);
    const gap = seen[2].at - seen[1].at;
    expect(gap).toBeGreaterThan(700);
    expect(gap).toBeLessThan(1500);

    fs.writeFileSync(path.join(stateDir, 'update.json'), JSON.stringify({ update_pending: true, update_failed: false }));
    const changed = await until(() => seen.find((s) => s.line.kind === 'health' && s.line.health.update_pending), 4000, 'a health line with update_pending');
    expect(changed.line.kind).toBe('health');
    res.destroy();
  });

  it('refuses a missing or wrong token, and a heartbeat period out of range', async () => {
    await expect(client.openChannel(target(agent), `${agent.token}x`, 5)).rejects.toMatchObject({ status: 401 });
    for (const every of [0, 61, Number.NaN]) {
      await expect(client.openChannel(target(agent), agent.token, every)).rejects.toMatchObject({ status: 400 });
    }
    const bare = await agent.request('GET', '/api/channel', undefined, { token: null });
    expect(bare.status).toBe(401);
  });

  it(`holds at most ${LIMITS.maxChannels} channels; a closed one frees its place`, async () => {
    const open = await Promise.all(Array.from({ length: LIMITS.maxChannels }, () => client.openChannel(target(agent), agent.token, 5)));
    const refused = await client.openChannel(target(agent), agent.token, 5).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AgentCallError);
    expect((refused as AgentCallError).status).toBe(429);
    const { ended } = lines(open[0]);
    open[0].destroy();
    await ended;
    let res: http.IncomingMessage | null = null;
    for (let i = 0; i < 30 && !res; i++) {
      res = await client.openChannel(target(agent), agent.token, 5).catch(() => null);
      if (!res) await new Promise((r) => setTimeout(r, 100));
    }
    expect(res?.statusCode).toBe(200);
    for (const r of [...open, res]) r?.destroy();
    // The agent still answers everything else.
    expect((await agent.request('GET', '/api/health')).status).toBe(200);
  });

  it('a stopping agent ends its channels at once instead of waiting for them', async () => {
    const other = await startAgent();
    const res = await client.openChannel(target(other), other.token, 5);
    const { ended } = lines(res);
    const t0 = Date.now();
    await other.stop();
    await ended;
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe("the master's ChannelWatch against real agents", () => {
  const logger = createLogger({ name: 'test', level: 'silent' });
  let agents: AgentHandle[] = [];
  afterEach(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    agents = [];
  });

  function watchOf(a: AgentHandle, everyS: number, port = a.port): { watch: ChannelWatch; lost: Array<{ slave: string; at: number; why: string }>; client: AgentClient } {
    const config = resolveFleetConfig({ slaves: [{ name: 'w', host: 'local', agentHost: a.host, agentPort: port }] }, { stack: 'unit', env: {}, requireSshKey: false });
    const slave: SlaveConfig = config.slaves[0];
    const client = new AgentClient({ maxSockets: 1, pins: () => a.tlsFingerprint });
    const lost: Array<{ slave: string; at: number; why: string }> = [];
    const watch = new ChannelWatch({
      slaves: [slave], client, everyS, logger,
      open: (_s, call) => call(a.token),
      onLost: (name, why) => lost.push({ slave: name, at: Date.now(), why }),
    });
    return { watch, lost, client };
  }

  it('SIGKILL: told within a second; the agent back on its port is reconnected to', async () => {
    const a = await startAgent();
    agents.push(a);
    const { watch, lost, client } = watchOf(a, 5);
    try {
      watch.start();
      await until(() => watch.status()[0].connected, 5000, 'the channel');
      const t0 = Date.now();
      process.kill(a.pid, 'SIGKILL');
      const l = await until(() => lost[0], 3000, 'the loss');
      expect(l.at - t0).toBeLessThan(1000);
      expect(l.slave).toBe('w');
      expect(watch.status()[0]).toMatchObject({ connected: false, since: null });

      const back = await startAgent({ port: a.port, token: a.token });
      agents.push(back);
      // The same key pair (its state dir is new, so a new one): the pin follows the agent now on the port.
      a.tlsFingerprint = back.tlsFingerprint;
      await until(() => watch.status()[0].connected, 10_000, 'the reconnect');
      expect(watch.status()[0].reconnects).toBe(1);
      expect(lost).toHaveLength(1);
    } finally {
      watch.stop();
      client.close();
    }
  });

  it('a hung agent (SIGSTOP): told after two missed heartbeats', async () => {
    const a = await startAgent();
    agents.push(a);
    const { watch, lost, client } = watchOf(a, 1);
    try {
      watch.start();
      await until(() => watch.status()[0].last_heartbeat_at, 5000, 'a heartbeat');
      process.kill(a.pid, 'SIGSTOP');
      const t0 = Date.now();
      const l = await until(() => lost[0], 6000, 'the loss');
      expect(l.why).toMatch(/two heartbeats missed/);
      expect(l.at - t0).toBeLessThan(3500); // 2 × 1 s + 1 s of slack, less what had passed since the last heartbeat
    } finally {
      process.kill(a.pid, 'SIGCONT');
      watch.stop();
      client.close();
    }
  });

  it('an agent that refuses the token is not asked again for minutes (each refusal counts towards its lockout)', async () => {
    const a = await startAgent();
    agents.push(a);
    const config = resolveFleetConfig({ slaves: [{ name: 'w', host: 'local', agentHost: a.host, agentPort: a.port }] }, { stack: 'unit', env: {}, requireSshKey: false });
    const client = new AgentClient({ pins: () => a.tlsFingerprint });
    let attempts = 0;
    const watch = new ChannelWatch({
      slaves: config.slaves, client, everyS: 1, logger,
      open: (_s, call) => { attempts++; return call(`${a.token}x`); },
      onLost: () => undefined,
    });
    try {
      watch.start();
      await until(() => watch.status()[0].last_error, 3000, 'the refusal');
      await new Promise((r) => setTimeout(r, 3000));
      expect(attempts).toBe(1);
      expect(watch.status()[0]).toMatchObject({ connected: false, last_error: expect.stringMatching(/HTTP 401/) });
    } finally {
      watch.stop();
      client.close();
    }
  });
});
