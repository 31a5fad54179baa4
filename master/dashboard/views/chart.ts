/** Inline SVG charts of check history: no client library, readable without JavaScript. */
import { escapeHtml } from '../http';

export interface CheckPoint { at: string; ok: boolean; latency_ms: number | null }

/**
 * Latency as a line, failed checks as red ticks along the bottom, oldest on the left. `points`
 * comes newest first (as the store returns it).
 */
export function checkChart(points: CheckPoint[], opts: { width?: number; height?: number; label?: string } = {}): string {
  const w = opts.width ?? 160;
  const h = opts.height ?? 32;
  const label = opts.label ?? 'check latency and failures';
  const pts = [...points].reverse();
  if (!pts.length) return `<svg class="chart" width="${w}" height="${h}" role="img" aria-label="no checks yet"><text x="4" y="${h / 2 + 4}" class="muted">no checks yet</text></svg>`;
  const max = Math.max(1, ...pts.map((p) => p.latency_ms ?? 0));
  const step = pts.length > 1 ? (w - 4) / (pts.length - 1) : 0;
  const x = (i: number) => (2 + i * step).toFixed(1);
  const y = (ms: number) => (h - 6 - ((h - 10) * ms) / max).toFixed(1);
  const line = pts.map((p, i) => (p.ok && p.latency_ms !== null ? `${x(i)},${y(p.latency_ms)}` : null)).filter(Boolean).join(' ');
  const fails = pts.map((p, i) => (p.ok ? '' : `<line x1="${x(i)}" x2="${x(i)}" y1="${h - 8}" y2="${h}" class="fail"/>`)).join('');
  const failed = pts.filter((p) => !p.ok).length;
  const okLat = pts.filter((p) => p.ok && p.latency_ms !== null).map((p) => p.latency_ms as number);
  const avg = okLat.length ? Math.round(okLat.reduce((a, b) => a + b, 0) / okLat.length) : null;
  const title = `${pts.length} checks since ${pts[0].at}: ${failed} failed${avg !== null ? `, mean latency ${avg} ms, max ${max} ms` : ''}`;
  // A large chart gets its scale and summary written on it; a sparkline keeps them in the tooltip.
  const legend = h >= 60 ? `<text x="${w - 4}" y="12" text-anchor="end">max ${max} ms</text><text x="${w - 4}" y="${h - 12}" text-anchor="end">${pts.length} checks, ${failed} failed${avg !== null ? `, mean ${avg} ms` : ''}</text>` : '';
  return `<svg class="chart" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${escapeHtml(label)}"><title>${escapeHtml(title)}</title>` +
    (line ? `<polyline points="${line}" class="lat"/>` : '') + fails + legend + '</svg>';
}
