/**
 * bench:soak's table: each measure at the start, middle and end of the run, extrapolated to a year of
 * sweeps at the default 30 s interval, with its target.
 */
import { median } from './bench-util';

export const SWEEPS_PER_YEAR = (365 * 86400) / 30;

/** One sampling of the running master (every second). */
export interface Point {
  /** Fraction of the run's sweeps done (0..1). */
  p: number;
  sweeps: number;
  /** Mean sweep time since the previous point (ms), null when no sweep ended in between. */
  sweepMs: number | null;
  rss: number | null;
  db: number;
  buildLogs: number;
  agentLogs: number[];
}

export interface Mix { sweeps: number; checks: number; deploys: number; failedDeploys: number; requests: number; messages: number }

/**
 * What each agent's logs take and how fast they are written, across redeploys: install.sh starts a new
 * agent.log at every deploy, so a size that drops while the agent's process changed or was gone is a
 * redeploy (not retention: a slave that is not redeployed for a year keeps every line), while a size
 * that drops with the same process running in both samples is the log rotated or trimmed: retention.
 */
export class AgentLogTracker {
  private readonly last: Array<{ bytes: number; pids: string }>;
  private readonly written: number[];
  private readonly maxSize: number[];
  readonly trimmed: boolean[];
  private from: number | null = null;
  private to = 0;

  constructor(n: number) {
    this.last = Array.from({ length: n }, () => ({ bytes: 0, pids: '' }));
    this.written = new Array(n).fill(0);
    this.maxSize = new Array(n).fill(0);
    this.trimmed = new Array(n).fill(false);
  }

  /** Sizes and agent pids (joined) at `sweeps`; the second half of the run (`counting`) gives the write rate. */
  observe(sweeps: number, sizes: number[], pids: string[], counting: boolean): void {
    sizes.forEach((b, i) => {
      const d = b - this.last[i].bytes;
      if (d > 0 && counting) this.written[i] += d;
      if (d < 0 && pids[i] !== '' && pids[i] === this.last[i].pids) this.trimmed[i] = true;
      this.maxSize[i] = Math.max(this.maxSize[i], b);
      this.last[i] = { bytes: b, pids: pids[i] };
    });
    if (counting) { this.from ??= sweeps; this.to = sweeps; }
  }

  /** Agent i's year: the largest size seen when its log is trimmed (retention holds it), else the second half's bytes per sweep for a year. */
  year(i: number): { bytes: number; plateau: boolean; perSweep: number } {
    const perSweep = this.from === null ? 0 : this.written[i] / Math.max(1, this.to - this.from);
    if (this.trimmed[i] || perSweep * 1000 < 1024) return { bytes: this.maxSize[i], plateau: true, perSweep };
    return { bytes: perSweep * SWEEPS_PER_YEAR, plateau: false, perSweep };
  }
}

const MB = 1024 * 1024;
const mb = (b: number): string => `${(b / MB).toFixed(b < MB ? 3 : 1)} MB`;
const ms = (x: number): string => `${x.toFixed(1)} ms`;

/** The point closest to fraction `p` of the run. */
function at(points: Point[], p: number): Point {
  return points.reduce((best, x) => (Math.abs(x.p - p) < Math.abs(best.p - p) ? x : best));
}

/** Median of `f` over the points in [lo, hi] of the run. */
function windowMedian(points: Point[], lo: number, hi: number, f: (x: Point) => number | null): number {
  const xs = points.filter((x) => x.p >= lo && x.p <= hi).map(f).filter((v): v is number => v !== null && Number.isFinite(v));
  return xs.length ? median(xs) : NaN;
}

export const WINDOWS = { start: [0.03, 0.1], middle: [0.46, 0.54], end: [0.92, 1] } as const;

interface Size { what: string; start: number; middle: number; end: number; year: number; how: string; plateau: boolean }

/**
 * A size's year: when the second half of the run grew it by at most a tenth of what the first half did
 * (per sweep) or by less than 64 KB, retention holds it (plateau: the year is the end value); otherwise it
 * grows linearly at the second half's slope per sweep, with the run's mix of deploys and requests per sweep.
 */
function sizeRow(what: string, s: number, m: number, e: number, sweepsS: number, sweepsM: number, sweepsE: number): Size {
  const r1 = (m - s) / Math.max(1, sweepsM - sweepsS);
  const r2 = (e - m) / Math.max(1, sweepsE - sweepsM);
  const plateau = e - m < 64 * 1024 || r2 <= 0.1 * r1;
  if (plateau) return { what, start: s, middle: m, end: e, year: Math.max(m, e), how: 'plateau (2nd half grew ≤ 1/10 of the 1st, or < 64 KB)', plateau };
  return { what, start: s, middle: m, end: e, year: e + r2 * (SWEEPS_PER_YEAR - sweepsE), how: `linear: +${mb(r2 * 1000)} per 1,000 sweeps (2nd half)`, plateau };
}

export function report(points: Point[], logs: AgentLogTracker, mix: Mix, o: { agents: number; intervalS: number; wallS: number; extraConfig?: string }): { text: string; failed: boolean } {
  const [s, m, e] = [at(points, 0.05), at(points, 0.5), points[points.length - 1]];
  const sizes: Size[] = [
    sizeRow('master.db (+ WAL)', s.db, m.db, e.db, s.sweeps, m.sweeps, e.sweeps),
    sizeRow('build_logs/', s.buildLogs, m.buildLogs, e.buildLogs, s.sweeps, m.sweeps, e.sweeps),
  ];
  // An agent's logs: the largest of the agents at each point, and the year of the one written fastest.
  const maxOf = (x: Point) => Math.max(...x.agentLogs);
  const sumOf = (x: Point) => x.agentLogs.reduce((a, b) => a + b, 0);
  const years = s.agentLogs.map((_v, i) => logs.year(i));
  const worst = years.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const logHow = (y: { plateau: boolean; perSweep: number }, n = 1) => (y.plateau
    ? 'plateau: trimmed while the agent ran (retention), or < 1 KB per 1,000 checks written: the largest size seen'
    : `linear: ${(y.perSweep * 1000 / n / 1024).toFixed(0)} KB written per 1,000 checks (2nd half, across redeploys), no redeploy in the year`);
  sizes.push({ what: `an agent's logs (max of ${o.agents})`, start: maxOf(s), middle: maxOf(m), end: maxOf(e), year: worst.bytes, how: logHow(worst), plateau: years.every((y) => y.plateau) });
  const allYear = years.reduce((a, y) => a + y.bytes, 0);
  const total = { what: `all ${o.agents} agents' logs (total)`, start: sumOf(s), middle: sumOf(m), end: sumOf(e), year: allYear, how: 'the sum of the agents\' years', plateau: years.every((y) => y.plateau) };

  const rss = Object.fromEntries(Object.entries(WINDOWS).map(([k, [lo, hi]]) => [k, windowMedian(points, lo, hi, (x) => x.rss)])) as Record<keyof typeof WINDOWS, number>;
  const sweep = Object.fromEntries(Object.entries(WINDOWS).map(([k, [lo, hi]]) => [k, windowMedian(points, lo, hi, (x) => x.sweepMs)])) as Record<keyof typeof WINDOWS, number>;
  // RSS and sweep time: flat (the year is the end value) when the end is at most 5 % above the start,
  // else linear per sweep from start to end.
  const sweepsS = at(points, (WINDOWS.start[0] + WINDOWS.start[1]) / 2).sweeps;
  const grow = (v: Record<keyof typeof WINDOWS, number>): { year: number; how: string } => (v.end / v.start - 1 <= 0.05
    ? { year: v.end, how: 'flat: end ≤ start + 5 %' }
    : { year: v.end + ((v.end - v.start) / Math.max(1, e.sweeps - sweepsS)) * (SWEEPS_PER_YEAR - e.sweeps), how: 'linear per sweep, start → end' });
  const rssGrowth = rss.end / rss.start - 1;
  const sweepRatio = sweep.end / sweep.start;

  const targets: Array<[string, boolean]> = [
    [`master.db after a year < 50 MB (${mb(sizes[0].year)})`, sizes[0].year < 50 * MB],
    [`build_logs/ after a year < 20 MB (${mb(sizes[1].year)})`, sizes[1].year < 20 * MB],
    [`an agent's logs after a year < 20 MB (${mb(sizes[2].year)})`, sizes[2].year < 20 * MB],
    ...sizes.map((x): [string, boolean] => [`${x.what}: reaches a plateau`, x.plateau]),
    [`master RSS growth start → end < 10 % (${(rssGrowth * 100).toFixed(1)} %)`, rssGrowth < 0.1],
    [`sweep time flat: end / start median ≤ 1.2 (${sweepRatio.toFixed(2)})`, sweepRatio <= 1.2],
  ];
  const lines = [
    `bench:soak — a real \`d8 master\` (direct engine), ${o.agents} real local agents (native) + 1 slave whose install fails, interval ${o.intervalS} s; wall ${(o.wallS / 60).toFixed(1)} min`,
    `run: ${mix.sweeps.toLocaleString('en')} sweeps, ${mix.checks.toLocaleString('en')} checks, ${mix.deploys} deploys (${mix.failedDeploys} failed), ${mix.requests.toLocaleString('en')} API requests, ${mix.messages} Telegram messages`,
    `year = ${SWEEPS_PER_YEAR.toLocaleString('en')} sweeps at 30 s, with the run's mix per sweep (${Math.round(mix.deploys * SWEEPS_PER_YEAR / mix.sweeps).toLocaleString('en')} deploys, ` +
      `${Math.round(mix.requests * SWEEPS_PER_YEAR / mix.sweeps).toLocaleString('en')} requests); sizes at 5 %, 50 % and 100 % of the sweeps; RSS and sweep time: medians over ` +
      `${Object.entries(WINDOWS).map(([k, [lo, hi]]) => `${k} ${lo * 100}–${hi * 100} %`).join(', ')} of the sweeps (1 s samples; sweep time = mean per sample)`,
    ...(o.extraConfig ? [`stack config added to the bench's (--config): ${o.extraConfig}; a retention cap below its default is reached in this compressed run, the default is not`] : []),
    '',
    '| measure | start | middle | end | one year (30 s) | extrapolation |',
    '|---|---:|---:|---:|---:|---|',
    ...[...sizes, total].map((x) => `| ${x.what} | ${mb(x.start)} | ${mb(x.middle)} | ${mb(x.end)} | ${mb(x.year)} | ${x.how} |`),
    `| master RSS | ${mb(rss.start)} | ${mb(rss.middle)} | ${mb(rss.end)} | ${mb(grow(rss).year)} | ${grow(rss).how} |`,
    `| sweep time (${o.agents + 1} slaves) | ${ms(sweep.start)} | ${ms(sweep.middle)} | ${ms(sweep.end)} | ${ms(grow(sweep).year)} | ${grow(sweep).how} |`,
    '',
    '| target | result |',
    '|---|---|',
    ...targets.map(([t, ok]) => `| ${t} | ${ok ? 'PASS' : 'FAIL'} |`),
  ];
  return { text: `${lines.join('\n')}\n`, failed: targets.some(([, ok]) => !ok) };
}
