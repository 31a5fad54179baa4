/**
 * What an agent that runs for a year writes: health and version polls (the master's, the docker
 * HEALTHCHECK's, a deploy's) are not logged at info, and with D8_LOG_FILE the agent caps its own
 * log file (setsid, cron and systemd units would otherwise append to it for ever).
 */
import { spawn, type ChildProcess } from 'child_process';
import fs from 'fs';
import path from 'path';
import { AGENT_ENTRY, AgentHandle, cleanEnv, httpRequest, makeTempDir, startAgent, strongToken, waitFor, writeVersionFile, type LogLine } from '../support/agent-process';

jest.setTimeout(120_000);

const INFO = 30;
const POLLS = 60;

describe('request logging', () => {
  let agent: AgentHandle;
  beforeAll(async () => {
    agent = await startAgent();
  });
  afterAll(async () => {
    await agent?.stop();
  });

  it('writes nothing at info for health and version polls, and still logs any other request', async () => {
    for (let i = 0; i < POLLS; i++) {
      expect((await agent.request('GET', '/api/health')).status).toBe(200);
      expect((await agent.request('GET', '/api/version')).status).toBe(200);
    }
    const r = await agent.execute({ command: 'true', kind: 'shell', method: 'native' });
    expect(r.status).toBe(200);
    await agent.waitForLog((l) => l.msg === 'request' && l.route === '/api/execute', 10_000, 'the execute request to be logged');
    const requests = agent.logLines().filter((l) => l.msg === 'request');
    expect(requests.filter((l) => l.route === '/api/health' || l.route === '/api/version')).toEqual([]);
    expect(requests.map((l) => [l.route, l.level])).toEqual([['/api/execute', INFO]]);
  });
});

describe('the start-up line', () => {
  it('is said again at D8_AGENT_ANNOUNCE_SECONDS, so a rotated log (a swarm task\'s) still holds the certificate', async () => {
    const agent = await startAgent({ env: { D8_AGENT_ANNOUNCE_SECONDS: '1' } });
    try {
      const lines = await waitFor(() => {
        const l = agent.logLines().filter((x) => x.msg === 'listening');
        return l.length >= 3 ? l : null;
      }, 15_000, 'three listening lines');
      expect(new Set(lines.map((l) => JSON.stringify([l.port, l.scheme, l.tls_fingerprint, l.commit]))).size).toBe(1);
      expect(lines[0].level).toBe(INFO);
    } finally {
      await agent.stop();
    }
  });
});

describe('D8_LOG_FILE', () => {
  const CAP = 4096;
  let dir: string;
  let child: ChildProcess;
  let stderr = '';
  const logFile = (): string => path.join(dir, 'agent.log');
  const linesOf = (file: string): LogLine[] =>
    fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogLine) : [];

  beforeAll(() => {
    dir = makeTempDir('d8-agent-logfile-');
    // Debug, so that every poll writes a line and the cap is reached quickly.
    const env = cleanEnv({
      D8_AGENT_TOKEN: strongToken(), D8_AGENT_HOST: '127.0.0.1', D8_AGENT_PORT: '0', D8_VERSION_FILE: writeVersionFile(dir).file,
      D8_LOG_FILE: logFile(), D8_LOG_MAX_BYTES: String(CAP), D8_LOG_LEVEL: 'debug',
    });
    child = spawn(process.execPath, [AGENT_ENTRY], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  });
  afterAll(async () => {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('rotates the file at the cap, keeps one older generation and writes nothing to stderr', async () => {
    const listening = await waitFor(() => linesOf(logFile()).find((l) => l.msg === 'listening'), 30_000, 'the listening line in D8_LOG_FILE');
    const port = Number(listening.port);
    for (let i = 0; i < 4 * POLLS; i++) {
      expect((await httpRequest({ host: '127.0.0.1', port, method: 'GET', path: '/api/health' })).status).toBe(200);
    }
    await httpRequest({ host: '127.0.0.1', port, method: 'GET', path: '/nowhere' });
    const last = await waitFor(() => linesOf(logFile()).find((l) => l.route === '/nowhere'), 10_000, 'the last request in the current file');
    expect(last.level).toBe(INFO);
    const older = `${logFile()}.1`;
    expect(fs.statSync(logFile()).size).toBeLessThanOrEqual(CAP);
    expect(fs.statSync(older).size).toBeLessThanOrEqual(CAP);
    expect(linesOf(older).filter((l) => l.route === '/api/health').length).toBeGreaterThan(0);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('agent.log')).sort()).toEqual(['agent.log', 'agent.log.1']);
    expect(stderr).toBe('');
  });
});
