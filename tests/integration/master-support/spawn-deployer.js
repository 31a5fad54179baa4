/**
 * TEST DOUBLE of the Deployer interface (loaded by `d8 master --deployer-module`): instead of running
 * install.sh it (re)starts the REAL agent (dist/agent/main.js) on the slave's loopback port with the
 * master's version_info.json, so the daemon's recovery and update paths run end to end without a
 * Docker engine or sshd. Plain CommonJS because the daemon under test is compiled JS.
 *
 * Environment: D8_TEST_AGENTS_DIR (pid files, version copies, logs; required),
 * D8_TEST_DEPLOY_FAIL (comma-separated slave names whose deploy fails; `name:kind` gives the error kind,
 * default install_failed),
 * D8_TEST_DEPLOY_DELAY_MS (pause before starting, to observe coalescing and SIGTERM),
 * D8_TEST_DEPLOY_TAIL_MS (pause after the agent answers, before the deploy returns: the end of an install).
 */
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const http = require('http');

const AGENT_ENTRY = path.resolve(__dirname, '..', '..', '..', 'dist', 'agent', 'main.js');

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

function health(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/api/health', agent: false, timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => { try { resolve(res.statusCode === 200 ? JSON.parse(body) : null); } catch { resolve(null); } });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

async function stopPrevious(pidFile) {
  let pid;
  try { pid = Number(fs.readFileSync(pidFile, 'utf8').trim()); } catch { return; }
  if (!pid || !alive(pid)) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  const deadline = Date.now() + 5000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}

exports.createDeployer = (ctx) => {
  const dir = process.env.D8_TEST_AGENTS_DIR;
  if (!dir) throw new Error('D8_TEST_AGENTS_DIR is required by the spawn deployer');
  return {
    engine: 'direct',
    async deploy(slave, opts) {
      const started = Date.now();
      const failing = (process.env.D8_TEST_DEPLOY_FAIL || '').split(',').map((x) => x.split(':')).find(([n]) => n === slave.name);
      const fail = !!failing;
      const failKind = (failing && failing[1]) || 'install_failed';
      const delay = Number(process.env.D8_TEST_DEPLOY_DELAY_MS || 0);
      if (delay) await new Promise((r) => setTimeout(r, delay));
      const buildLog = path.join(dir, `${slave.name}-${Date.now()}-build.json`);
      fs.writeFileSync(buildLog, JSON.stringify({ slave: slave.name, reason: opts.reason, status: fail ? 'failed' : 'success' }));
      const base = { slave: slave.name, engine: 'direct', attempts: [], buildLogPath: buildLog };
      if (fail) return { ...base, status: 'failed', ok: false, errorKind: failKind, strategy: null, commit: null, error: `${failKind}: the deploy failed (test double)`, durationMs: Date.now() - started };
      const pidFile = path.join(dir, `${slave.name}.pid`);
      await stopPrevious(pidFile);
      const versionFile = path.join(dir, `${slave.name}-version.json`);
      fs.copyFileSync(path.join(ctx.repoDir, 'version_info.json'), versionFile);
      const log = fs.openSync(path.join(dir, `${slave.name}.log`), 'a');
      const child = spawn(process.execPath, [AGENT_ENTRY], {
        detached: true,
        stdio: ['ignore', log, log],
        env: {
          PATH: process.env.PATH, HOME: process.env.HOME,
          D8_AGENT_TOKEN: ctx.config.agentToken, D8_AGENT_PORT: String(slave.agentPort), D8_AGENT_HOST: '127.0.0.1',
          D8_VERSION_FILE: versionFile, D8_INSTALL_STRATEGY: 'native', D8_TEST_MARK: dir,
        },
      });
      child.unref();
      fs.closeSync(log);
      fs.writeFileSync(pidFile, String(child.pid));
      const deadline = Date.now() + 30000;
      let h = null;
      while (!h && Date.now() < deadline) {
        h = await health(slave.agentPort);
        if (!h) await new Promise((r) => setTimeout(r, 100));
      }
      const tail = Number(process.env.D8_TEST_DEPLOY_TAIL_MS || 0);
      if (tail) await new Promise((r) => setTimeout(r, tail));
      return { ...base, status: h ? 'deployed' : 'failed', ok: !!h, errorKind: h ? null : 'install_failed', strategy: h ? 'native' : null, commit: h ? h.commit : null, error: h ? null : 'the agent did not answer after the deploy', durationMs: Date.now() - started };
    },
  };
};
