/**
 * The events timeline, read from the outbox tables (alerts_sent, alerts_outbox). A payload that is a
 * typed alert (core/alerts.ts) gets the same headline the notifiers use; anything else that still
 * has a kind (a row written before the contract, or by a newer master) is shown leniently from its
 * kind and data rather than dropped.
 */
import { z } from 'zod';
import type { Db } from '../store/db';
import { stmt } from '../store/db';
import type { Redactor } from '../../core/redact';
import { AlertSchema } from '../../core/alerts';
import { alertHeadline } from '../notify/headline';

export const EVENT_CATEGORIES = ['state', 'deploy', 'alert', 'decision', 'master'] as const;
export type EventCategory = (typeof EVENT_CATEGORIES)[number];

export interface EventView {
  id: number;
  at: string;
  kind: string;
  category: EventCategory;
  slave: string | null;
  title: string;
  text: string;
  delivered: boolean;
}

const PayloadSchema = z.object({
  kind: z.string(),
  slave: z.string().nullable().optional(),
  title: z.string().optional(),
  text: z.string().optional(),
  created_at: z.string().optional(),
  data: z.record(z.unknown()).optional(),
}).passthrough();

const CATEGORY: Array<[RegExp, EventCategory]> = [
  [/^(slave_dead|slave_recovered|slave_down|slave_up|version_mismatch|state_)/, 'state'],
  [/^(update_|recovery_|provisioning_|deploy_|rollout_|rollback_)/, 'deploy'],
  [/^(human_request|request_|budget_|daily_summary)/, 'decision'],
  [/^master_/, 'master'],
];

export function categoryOf(kind: string): EventCategory {
  return CATEGORY.find(([re]) => re.test(kind))?.[1] ?? 'alert';
}

/** One outbox payload as a timeline entry; null when it is not an alert at all. */
export function eventFromPayload(id: number, payload: string, fallbackAt: string, delivered: boolean): EventView | null {
  let raw: unknown;
  try { raw = JSON.parse(payload); } catch { return null; }
  const p = PayloadSchema.safeParse(raw);
  if (!p.success) return null;
  const a = p.data;
  const slave = a.slave ?? null;
  const data = a.data ?? {};
  const words = Object.entries(data).filter(([, v]) => ['string', 'number', 'boolean'].includes(typeof v)).map(([k, v]) => `${k}: ${String(v)}`);
  const typed = AlertSchema.safeParse(raw);
  return {
    id, delivered, kind: a.kind, category: categoryOf(a.kind), slave,
    at: a.created_at ?? fallbackAt,
    title: a.title ?? (typed.success ? alertHeadline(typed.data) : `${a.kind.replace(/_/g, ' ')}${slave ? ` · ${slave}` : ''}`),
    text: a.text ?? (a.title ? '' : words.join(' · ')),
  };
}

export interface EventQuery { slave?: string; category?: EventCategory; limit?: number }

/** Newest first: delivered alerts and the ones still queued, every string scrubbed once more. */
export function readEvents(db: Db, redactor: Redactor, q: EventQuery = {}): EventView[] {
  const limit = q.limit ?? 200;
  const sent = stmt(db, 'SELECT id, created_at, payload FROM alerts_sent ORDER BY id DESC LIMIT ?').all(limit * 2) as Array<{ id: number; created_at: string; payload: string }>;
  const queued = stmt(db, 'SELECT id, created_at, payload FROM alerts_outbox ORDER BY id DESC LIMIT ?').all(limit) as Array<{ id: number; created_at: string; payload: string }>;
  const all = [...queued.map((r) => eventFromPayload(r.id, r.payload, r.created_at, false)), ...sent.map((r) => eventFromPayload(r.id, r.payload, r.created_at, true))]
    .filter((e): e is EventView => e !== null)
    .filter((e) => (!q.slave || e.slave === q.slave) && (!q.category || e.category === q.category))
    .sort((a, b) => b.id - a.id)
    .slice(0, limit);
  return all.map((e) => ({ ...e, title: redactor.text(e.title), text: redactor.text(e.text) }));
}
