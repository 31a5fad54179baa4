/**
 * The escalation path end to end, on the SSH test hosts (scripts/test-hosts.sh): the real daemon with
 * the real direct deployer deploys to the "broken" host, where every strategy fails for real ->
 * INFRASTRUCTURE request with priority high -> Telegram messages (the failure with each strategy's
 * error tail and the build log; the request with buttons) -> Approve (retry) -> the daemon retries
 * and completes the request with the outcome -> Telegram.
 */
import { execFileSync, spawn, type ChildProcess } from 'child_process';
import fs from 'fs';
import path from 'path';
import YAML from 'yaml';
import { describeTier } from '../support/tier';
import { TelegramStandIn } from '../support/telegram-standin';
import { Fleet, D8_BIN, REPO_ROOT, waitFor } from './master-support/fleet';

jest.setTimeout(900_000);

const HOSTS_DIR = process.env.D8_TEST_HOSTS_DIR ?? '/var/lib/d8-test-hosts';
const CHAT = 90009;

function hostsEnv(): Record<string, string> | null {
  try {
    const text = fs.readFileSync(path.join(HOSTS_DIR, 'hosts.env'), 'utf8');
    const out: Record<string, string> = {};
    for (const line of text.split('\n')) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m) out[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
    }
    return out;
  } catch {
    return null;
  }
}

const testHosts = {
  tier: 'system (SSH test hosts)',
  enable: 'run `sudo scripts/test-hosts.sh up` (needs root, openssh-server, util-linux, python3-venv)',
  missing: (): string | null => {
    const env = hostsEnv();
    if (!env?.D8_TEST_BROKEN_HOST) return `no test hosts (${path.join(HOSTS_DIR, 'hosts.env')} is missing)`;
    try {
      const status = execFileSync('sh', [path.join(REPO_ROOT, 'scripts', 'test-hosts.sh'), 'status'], { encoding: 'utf8', env: { ...process.env, D8_TEST_HOSTS_DIR: HOSTS_DIR } });
      if (!/^broken\s.*\bup\b/m.test(status)) return 'the "broken" test host is not up';
    } catch (err) {
      return `scripts/test-hosts.sh status failed: ${(err as Error).message.split('\n')[0]}`;
    }
    return null;
  },
};

describeTier(testHosts, 'escalation: a deploy failing on every strategy reaches Telegram and is answered there', () => {
  const fleet = new Fleet('esc');
  const standin = new TelegramStandIn();
  let daemon: ChildProcess | null = null;
  const logFile = path.join(fleet.root, 'daemon-esc.log');

  beforeAll(async () => {
    const h = hostsEnv()!;
    await standin.start();
    standin.addChat(CHAT);
    fleet.initRepo([]);
    // The direct deployer builds the agent bundle from --repo: give the test repository the agent's sources.
    for (const dir of ['agent', 'core']) fs.cpSync(path.join(REPO_ROOT, dir), path.join(fleet.repo, dir), { recursive: true });
    fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(fleet.repo, 'node_modules'));
    fs.appendFileSync(path.join(fleet.repo, '.gitignore'), 'node_modules\nbuild/\n');
    execFileSync('git', ['add', '.'], { cwd: fleet.repo });
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'agent sources'], { cwd: fleet.repo });
    fs.writeFileSync(path.join(fleet.repo, 'Pulumi.esc.yaml'), YAML.stringify({
      config: {
        'd8:slaves': [{
          name: 'broken', host: h.D8_TEST_BROKEN_HOST, user: h.D8_TEST_BROKEN_USER, sshPort: Number(h.D8_TEST_BROKEN_PORT),
          hostKey: h.D8_TEST_BROKEN_HOSTKEY, strategies: ['docker', 'venv', 'native'],
        }],
        'd8:sshKeyPath': h.D8_TEST_KEY,
        'd8:installAttempts': 1,
        'd8:installDelaySeconds': 0,
        'd8:checkIntervalSeconds': 1,
      },
    }));
    const out = fs.openSync(logFile, 'a');
    daemon = spawn(process.execPath, [D8_BIN, 'master', '--stack', 'esc', '--repo', fleet.repo, '--interval', '1', '--engine', 'direct'], {
      env: fleet.env({
        TELEGRAM_TOKEN: standin.token, TELEGRAM_CHAT_ID: String(CHAT), TELEGRAM_API_ROOT: standin.apiRoot,
        D8_MASTER_TUNING: JSON.stringify({ deadAfter: 1, recoveryAttempts: 1, recoveryBackoffMs: 1000, recoveryBackoffMaxMs: 2000, settleMs: 3000, controlPollMs: 200, attemptTimeoutMs: 1000, checkDeadlineMs: 3000, stopGraceMs: 5000 }),
      }),
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
  });

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) {
      const done = new Promise((r) => daemon!.once('exit', r));
      daemon.kill('SIGTERM');
      const t = setTimeout(() => daemon!.kill('SIGKILL'), 30_000);
      await done;
      clearTimeout(t);
    }
    const keep = process.env.D8_TEST_KEEP_LOGS;
    if (keep) {
      fs.mkdirSync(keep, { recursive: true });
      if (fs.existsSync(logFile)) fs.copyFileSync(logFile, path.join(keep, 'daemon-esc.log'));
      fs.writeFileSync(path.join(keep, 'telegram-esc-sent.json'), JSON.stringify(standin.sent(), null, 2));
    }
    await fleet.cleanup();
    await standin.stop();
  });

  it('failure on every strategy -> INFRASTRUCTURE request (high) -> Telegram with buttons -> approve (retry) -> outcome', async () => {
    const failure = await standin.waitForMessage(CHAT, /(Recovery|Provisioning) of broken failed/, 600_000);
    expect(failure.text).toMatch(/docker/);
    expect(failure.text).toMatch(/venv/);
    expect(failure.text).toMatch(/native/);
    expect(failure.text).toMatch(/Build log: \S+\.json/);

    const req = await waitFor(() => fleet.db().requests.list().find((r) => r.type === 'INFRASTRUCTURE' && r.action?.slave === 'broken'), 60_000, 'the escalation request');
    expect(req.priority).toBe('high');
    const msg = await standin.waitFor(() => standin.sent(CHAT).find((m) => m.text.includes(req.id) && !!m.reply_markup), 60_000, 'the request message');
    expect(msg.text).toContain('INFRASTRUCTURE');
    expect(msg.text).toContain('priority high');

    standin.injectCallback(CHAT, msg.message_id, `req:approve:${req.id}`);
    await standin.waitFor(() => standin.answers.find((a) => a.text === `${req.id} approved`), 60_000, 'the button answer');
    // The daemon runs the retry (it fails again on this host) and completes the request with the outcome.
    const outcome = await standin.waitForMessage(CHAT, new RegExp(`Request ${req.id} is now COMPLETED`), 600_000);
    expect(outcome.text).toMatch(/Note: (failed|done):/);
    expect(fleet.db().requests.get(req.id).status).toBe('COMPLETED');

    const key = fs.readFileSync(hostsEnv()!.D8_TEST_KEY, 'utf8').trim();
    for (const m of standin.sent(CHAT)) expect(m.text).not.toContain(key.split('\n')[1]);
  });
});
