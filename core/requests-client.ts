/**
 * A small typed client for the master's requests API, for programs written in TypeScript or
 * JavaScript: `import { RequestsClient } from 'd8-fleet'`.
 *
 *   const d8 = new RequestsClient({ url: 'http://127.0.0.1:7500', token: process.env.D8_API_TOKEN! });
 *   const r = await d8.create({ type: 'PAYMENT', title: 'Renew example.org', estimated_cost: 12 });
 *   const decided = await d8.waitForDecision(r.id, { timeoutMs: 3600_000 });
 *   if (decided.status === 'APPROVED') …
 *
 * Answers are validated with the same zod schemas the master uses; an error answer becomes a
 * RequestsApiError carrying the HTTP status and the field the master named.
 */
import { z } from 'zod';
import {
  ApiCreateRequestSchema, DecisionInputSchema, HumanRequestSchema, RequestPageSchema, isOpen,
  type ApiCreateRequestInput, type Decision, type HumanRequest, type RequestPage, type RequestStatus,
} from './requests';
import { SpendReportSchema, type SpendReport } from './approval';

export class RequestsApiError extends Error {
  constructor(message: string, readonly status: number, readonly field?: string) {
    super(message);
    this.name = 'RequestsApiError';
  }
}

export interface RequestsClientOptions {
  /** The master's dashboard address, e.g. http://127.0.0.1:7500 */
  url: string;
  /** An API token from `d8 tokens create` (keep it out of argv: read it from a file or the environment). */
  token: string;
  /** Per HTTP call, without a long poll's wait (default 30 s). */
  timeoutMs?: number;
}

const ErrorBodySchema = z.object({ error: z.string(), field: z.string().optional() });
/** One long poll asks the master to wait at most this long (its limit is 120 s). */
const POLL_S = 60;

export class RequestsClient {
  private readonly base: string;

  constructor(private readonly o: RequestsClientOptions) {
    this.base = o.url.replace(/\/+$/, '');
  }

  /** Files a request; the answer says whether a rule auto-approved it (`status`, `auto_rule`). */
  async create(input: ApiCreateRequestInput): Promise<HumanRequest> {
    const body = ApiCreateRequestSchema.parse(input);
    return HumanRequestSchema.parse(await this.call('POST', '/api/requests', body));
  }

  /** The newest requests (one page of at most 100). */
  async list(status?: RequestStatus): Promise<HumanRequest[]> {
    return (await this.page({ ...(status ? { status } : {}) })).requests;
  }

  /** One page, newest first; pass its `next_before` as `before` for the next (older) one. */
  async page(q: { status?: RequestStatus; limit?: number; before?: string } = {}): Promise<RequestPage> {
    const params = new URLSearchParams(Object.entries(q).filter(([, v]) => v !== undefined).map(([k, v]): [string, string] => [k, String(v)]));
    const qs = params.toString();
    return RequestPageSchema.parse(await this.call('GET', `/api/requests${qs ? `?${qs}` : ''}`));
  }

  async get(id: string): Promise<HumanRequest> {
    return HumanRequestSchema.parse(await this.call('GET', `/api/requests/${encodeURIComponent(id)}`));
  }

  /**
   * Waits until a person (or a rule) decided `id` (its status is no longer PENDING or POSTPONED), or
   * until `timeoutMs` passed; returns the request as it is then. Long polls, so no decision is missed
   * and no busy loop runs.
   */
  async waitForDecision(id: string, opts: { timeoutMs?: number } = {}): Promise<HumanRequest> {
    const deadline = Date.now() + (opts.timeoutMs ?? 3600_000);
    for (;;) {
      const left = Math.ceil((deadline - Date.now()) / 1000);
      const wait = Math.max(0, Math.min(POLL_S, left));
      const r = HumanRequestSchema.parse(await this.call('GET', `/api/requests/${encodeURIComponent(id)}?wait=${wait}`, undefined, wait * 1000));
      if (!isOpen(r) || Date.now() >= deadline) return r;
    }
  }

  async decide(id: string, decision: Decision, note?: string): Promise<HumanRequest> {
    const body = DecisionInputSchema.parse({ decision, ...(note ? { note } : {}) });
    return HumanRequestSchema.parse(await this.call('POST', `/api/requests/${encodeURIComponent(id)}/decision`, body));
  }

  /** Approved costs per type for `month` (YYYY-MM, default this one) against the budgets. */
  async spend(month?: string): Promise<SpendReport> {
    return SpendReportSchema.parse(await this.call('GET', `/api/spend${month ? `?month=${encodeURIComponent(month)}` : ''}`));
  }

  private async call(method: 'GET' | 'POST', path: string, body?: unknown, extraMs = 0): Promise<unknown> {
    const signal = AbortSignal.timeout((this.o.timeoutMs ?? 30_000) + extraMs);
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: { Authorization: `Bearer ${this.o.token}`, Accept: 'application/json', ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal,
      });
    } catch (err) {
      throw new RequestsApiError(`cannot reach the D8 master at ${this.base}: ${(err as Error).message}`, 0);
    }
    const text = await res.text();
    let json: unknown = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* reported below */ }
    if (!res.ok) {
      const e = ErrorBodySchema.safeParse(json);
      throw new RequestsApiError(e.success ? e.data.error : `HTTP ${res.status} from ${method} ${path}`, res.status, e.success ? e.data.field : undefined);
    }
    if (json === null) throw new RequestsApiError(`the master's answer to ${method} ${path} is not JSON`, res.status);
    return json;
  }
}
