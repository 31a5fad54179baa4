/**
 * Which slave a routed task goes to (pure): one that is healthy, at the master's commit, not being
 * deployed, reachable, and has every needed label and capability; of those the least busy (the
 * agent's running executions, or this router's own in-flight tasks when higher), ties broken by
 * recent check latency, then name. A slave already at its concurrency limit is fit but full.
 */
import type { HealthResponse } from '../../core/protocol';
import type { Unfit } from '../../core/tasks';

export interface Candidate {
  name: string;
  state: string;
  drift: string;
  deploying: boolean;
  labels: readonly string[];
  /** A fresh /api/health answer, or null when the agent did not answer. */
  health: HealthResponse | null;
  /** Mean latency of recent checks (ms), null without any. */
  latencyMs: number | null;
  /** Tasks this router sent there that have not finished. */
  inflight: number;
}

export const NO_HEALTH = 'an agent that answers /api/health';

/** What `c` lacks for a task that needs `needs` (empty: it fits). */
export function missing(c: Candidate, needs: readonly string[]): string[] {
  const out: string[] = [];
  if (c.state !== 'healthy') out.push(`healthy (it is ${c.state})`);
  if (c.drift !== 'equal') out.push(`the master's commit (drift ${c.drift})`);
  if (c.deploying) out.push('no deploy running (one is)');
  if (!c.health) out.push(NO_HEALTH);
  for (const n of needs) {
    const h = c.health;
    if (n === 'docker' || n === 'venv' || n === 'native') {
      if (h && !h.execution_methods[n]) out.push(n);
    } else if (n === 'python') {
      if (h && h.python_version === null) out.push('python');
    } else if (n.startsWith('arch:')) {
      if (h && h.arch !== n.slice(5)) out.push(`${n} (it is ${h.arch ?? 'unknown'})`);
    } else if (!c.labels.includes(n)) {
      out.push(`label ${n}`);
    }
  }
  return out;
}

export const load = (c: Candidate): number => Math.max(c.health?.running_executions ?? 0, c.inflight);
export const full = (c: Candidate): boolean => c.health?.max_concurrency != null && load(c) >= c.health.max_concurrency;

export type Choice =
  | { kind: 'chosen'; slave: string; why: string }
  /** Some slaves fit, but each is at its concurrency limit: wait and choose again. */
  | { kind: 'all_full'; fit: string[] }
  | { kind: 'none'; unfit: Unfit[] };

export function choose(candidates: readonly Candidate[], needs: readonly string[], exclude: ReadonlySet<string> = new Set()): Choice {
  const unfit: Unfit[] = [];
  const fit: Candidate[] = [];
  for (const c of candidates) {
    if (exclude.has(c.name)) { unfit.push({ slave: c.name, missing: ['not to have failed this task already'] }); continue; }
    const m = missing(c, needs);
    if (m.length) unfit.push({ slave: c.name, missing: m });
    else fit.push(c);
  }
  if (!fit.length) return { kind: 'none', unfit };
  const open = fit.filter((c) => !full(c));
  if (!open.length) return { kind: 'all_full', fit: fit.map((c) => c.name) };
  open.sort((a, b) => load(a) - load(b) || (a.latencyMs ?? Infinity) - (b.latencyMs ?? Infinity) || a.name.localeCompare(b.name));
  const best = open[0];
  const others = fit.filter((c) => c !== best).map((c) => `${c.name} ${load(c)}${full(c) ? ' (full)' : ''}`);
  const why = `${best.name} fits${needs.length ? ` (needs ${needs.join(', ')})` : ''} and is the least busy: ${load(best)} running` +
    `${best.health?.max_concurrency ? ` of ${best.health.max_concurrency}` : ''}${best.latencyMs !== null ? `, ${Math.round(best.latencyMs)} ms latency` : ''}` +
    `${others.length ? `; other fit slaves: ${others.join(', ')}` : '; no other slave fits'}`;
  return { kind: 'chosen', slave: best.name, why };
}
