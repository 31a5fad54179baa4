/**
 * Dashboard benchmark (`npm run bench:dashboard`).
 *
 * A store with 100 slaves and a day of check history each (2,880 checks at 30 s, more than the
 * store keeps), the real dashboard started in this process on loopback. Measured: the fleet page's
 * server time (cold and warm) and, in Debian's chromium when it is installed, its first contentful
 * paint; the heap and RSS the dashboard adds to the process (target < 20 MB) after many renders and
 * scrapes; the latency from a state change written by another store connection to the SSE event and
 * to the browser's DOM (target < 1 s).
 *
 * Usage: node dist/bench/dashboard.bench.js [--slaves 100] [--checks 2880] [--renders 200]
 */
import fs from 'fs';
import http from 'http';
import os from 'os';
import path from 'path';
import v8 from 'v8';
import vm from 'vm';
import pino from 'pino';
import { openStore } from '../master/store';
import { FleetControl } from '../master/control';
import { startDashboard } from '../master/dashboard';
import { repoRoot } from '../core/paths';
import { gitHead } from '../core/version-info';
import type { FleetConfig, SlaveConfig } from '../core/stack-config';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};

v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;
const heapMb = () => { gc(); gc(); return process.memoryUsage().heapUsed / 2 ** 20; };
const rssMb = () => process.memoryUsage().rss / 2 ** 20;

function get(port: number, p: string): Promise<{ ms: number; bytes: number; status: number }> {
  const t = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ ms: Number(process.hrtime.bigint() - t) / 1e6, bytes, status: res.statusCode ?? 0 }));
    }).on('error', reject);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)];

async function main(): Promise<void> {
  const nSlaves = arg('slaves', 100);
  const nChecks = arg('checks', 2880);
  const renders = arg('renders', 200);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-dash-bench-'));
  process.env.D8_HOME = home;
  const repoDir = repoRoot();
  const commit = gitHead(repoDir);
  const stack = 'bench';
  const port = 17500 + Math.floor(Math.random() * 1000);
  const slaves: SlaveConfig[] = Array.from({ length: nSlaves }, (_, i) => ({
    name: `slave-${String(i).padStart(3, '0')}`, host: 'local', local: true, user: 'bench', sshPort: 22, agentPort: 20000 + i,
    agentHost: '127.0.0.1', strategies: ['native'], autoUpdate: 'auto',
  }));
  const config: FleetConfig = {
    stack, slaves, autoUpdate: 'auto', checkIntervalSeconds: 30, telegramChatIds: [], requirements: [], installAttempts: 1, installDelaySeconds: 0,
    dashboard: { enabled: true, port, bind: '127.0.0.1', trustProxy: false },
  };
  const store = openStore(path.join(home, 'master.db'));
  store.master.started(stack, commit, 'main', 'direct');
  const day = Date.now() - 86_400_000;
  const insert = store.db.prepare('INSERT INTO check_history (stack, slave, at, ok, latency_ms, commit_sha, error) VALUES (?, ?, ?, ?, ?, ?, ?)');
  store.db.transaction(() => {
    for (const s of slaves) {
      store.slaves.patch(stack, s.name, { state: 'healthy', drift: 'equal', commit, strategy: 'native', last_seen: new Date().toISOString() });
      for (let i = 0; i < nChecks; i++) {
        const ok = i % 97 !== 0;
        insert.run(stack, s.name, new Date(day + i * 30_000).toISOString(), ok ? 1 : 0, ok ? 5 + (i % 40) : null, commit, ok ? null : 'connect ECONNREFUSED');
      }
    }
  })();
  for (let i = 0; i < 20; i++) store.requests.create({ type: 'INFRASTRUCTURE', title: `request ${i}`, created_by: 'bench' });

  const logger = pino({ level: 'warn' });
  const control = new FleetControl({ config, store, repoDir });
  const heap0 = heapMb();
  const rss0 = rssMb();
  const dash = await startDashboard({ config, store, control, repoDir, logger });
  if (!dash) throw new Error('the dashboard did not start');
  const rssStarted = rssMb();

  const cold = await get(port, '/');
  const warm: number[] = [];
  for (let i = 0; i < 20; i++) warm.push((await get(port, '/')).ms);
  const metrics: number[] = [];
  for (let i = 0; i < renders; i++) {
    await get(port, i % 2 ? '/requests' : '/slaves/slave-001');
    if (i % 10 === 0) metrics.push((await get(port, '/metrics')).ms);
  }
  const heap1 = heapMb();
  const rss1 = rssMb();
  const mem1 = process.memoryUsage();

  // SSE latency: a state change written by another connection (as the CLI or a sweep would).
  const writer = openStore(path.join(home, 'master.db'));
  const sseLat: number[] = [];
  await new Promise<void>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/live', agent: false, headers: { Host: `127.0.0.1:${port}` } }, (res) => {
      let pendingAt = 0;
      let n = 0;
      const next = () => {
        if (n >= 10) { req.destroy(); resolve(); return; }
        setTimeout(() => { pendingAt = Date.now(); writer.slaves.patch(stack, 'slave-000', { state: n % 2 ? 'healthy' : 'dead' }); n++; }, 200);
      };
      res.on('data', (c: Buffer) => {
        if (c.toString().includes('event: change') && pendingAt) { sseLat.push(Date.now() - pendingAt); pendingAt = 0; next(); }
      });
      next();
    });
    req.on('error', reject);
  });

  let fcp: number | null = null;
  let domLat: number[] = [];
  const chromium = process.env.D8_CHROMIUM || '/usr/bin/chromium';
  if (fs.existsSync(chromium)) {
    const { chromium: pw } = await import('playwright-core');
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-chromium-'));
    const ctx = await pw.launchPersistentContext(profile, { executablePath: chromium, headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('#live.on');
    fcp = await page.evaluate(() => {
      const e = (globalThis as unknown as { performance: { getEntriesByName(n: string): Array<{ startTime: number }> } }).performance.getEntriesByName('first-contentful-paint')[0];
      return e ? e.startTime : null;
    });
    domLat = [];
    for (let i = 0; i < 10; i++) {
      const state = i % 2 ? 'healthy' : 'dead';
      const t = Date.now();
      writer.slaves.patch(stack, 'slave-000', { state });
      await page.waitForSelector(`tr[data-slave="slave-000"][data-state="${state}"]`, { timeout: 10_000 });
      domLat.push(Date.now() - t);
      await new Promise((r) => setTimeout(r, 100));
    }
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }

  const row = (k: string, v: string, target = '') => `| ${k.padEnd(46)} | ${v.padStart(14)} | ${target.padEnd(8)} |`;
  const lines = [
    `dashboard bench: ${nSlaves} slaves × ${nChecks} checks (${(nSlaves * nChecks).toLocaleString()} rows), ${renders} renders`,
    `| ${'measure'.padEnd(46)} | ${'value'.padStart(14)} | target   |`,
    `|${'-'.repeat(48)}|${'-'.repeat(16)}|----------|`,
    row('fleet page, first request (server, ms)', cold.ms.toFixed(1)),
    row('fleet page, warm median / p95 (ms)', `${median(warm).toFixed(1)} / ${p95(warm).toFixed(1)}`),
    row('fleet page size (KiB)', (cold.bytes / 1024).toFixed(1)),
    row('/metrics median (ms)', metrics.length ? median(metrics).toFixed(1) : '—'),
    row('browser first contentful paint (ms)', fcp === null ? 'no chromium' : fcp.toFixed(0)),
    row('heap added by the dashboard (MB)', (heap1 - heap0).toFixed(1), '< 20'),
    row('RSS added by starting it (MB)', (rssStarted - rss0).toFixed(1)),
    row('RSS added after the renders and scrapes (MB)', (rss1 - rss0).toFixed(1), '< 20'),
    row('after: heapTotal / external / arrayBuffers (MB)', [mem1.heapTotal, mem1.external, mem1.arrayBuffers].map((b) => (b / 2 ** 20).toFixed(1)).join(' / ')),
    row('state change -> SSE event, median / max (ms)', `${median(sseLat)} / ${Math.max(...sseLat)}`, '< 1000'),
    row('state change -> browser DOM, median / max (ms)', domLat.length ? `${median(domLat)} / ${Math.max(...domLat)}` : 'no chromium', '< 1000'),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  await dash.stop();
  writer.close();
  store.close();
  fs.rmSync(home, { recursive: true, force: true });
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
