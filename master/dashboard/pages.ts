/**
 * What each route does: reads for the pages, and the state-changing actions, which go through the
 * same FleetControl (retry / update) and RequestService (decisions) as the CLI and the bot.
 */
import fs from 'fs';
import path from 'path';
import type { FleetConfig } from '../../core/stack-config';
import { d8Home } from '../../core/paths';
import type { Redactor } from '../../core/redact';
import type { Logger } from '../../core/logger';
import type { FleetControl, SlaveStatus } from '../control';
import type { Store } from '../store';
import { DECISIONS, RequestIdSchema, type Decision, type HumanRequest, type RequestStatus } from '../../core/requests';
import { DECISION_PAST, decideRequest } from '../requests/decide';
import { spendReport } from '../requests/spend-report';
import { monthOf } from '../requests/month';
import { EVENT_CATEGORIES, readEvents, type EventCategory } from './event-feed';
import type { GitDistance } from './git-distance';
import { HttpError, requestErrorToHttp } from './http';
import { eventsPage } from './views/events';
import { fleetPage } from './views/fleet';
import type { Page } from './views/layout';
import { requestsPage } from './views/requests';

const DECIDED: RequestStatus[] = ['APPROVED', 'REJECTED', 'COMPLETED'];
/** Decided requests per page of /requests. */
const DECIDED_PAGE = 50;
import { buildLogPage, slavePage, updateNeedsConfirmation, type ActionNote } from './views/slave';
import { moveRollout, type RolloutVerb } from '../rollout/control';
import { rolloutView } from '../rollout/view';
import { RolloutError } from '../store/rollouts';

export interface PagesDeps {
  config: FleetConfig;
  store: Store;
  control: FleetControl;
  distance: GitDistance;
  redactor: Redactor;
  logger: Logger;
}


const NOTE_MAX = 500;
const CHART_POINTS = 60;

export class DashboardPages {
  /** Recent Retry / Update clicks per slave, newest first (their outcome also lands in the store). */
  private readonly actions = new Map<string, ActionNote[]>();

  constructor(private readonly d: PagesDeps) {}

  private slave(name: string): SlaveStatus {
    const s = this.d.control.status().slaves.find((x) => x.name === name);
    if (!s) throw new HttpError(404, `stack ${this.d.config.stack} has no slave named "${name}"`);
    return s;
  }

  async fleet(csrf: string): Promise<Page> {
    const st = this.d.control.status();
    const rows = await Promise.all(st.slaves.map(async (s) => ({
      slave: s,
      distance: await this.d.distance.between(st.master.commit, s.commit),
      checks: this.d.store.slaves.history(st.stack, s.name, CHART_POINTS),
    })));
    const latest = this.d.store.rollouts.latest(st.stack);
    return fleetPage({
      masterCommit: st.master.commit, daemonRunning: st.master.daemon.running, rows, openRequests: st.open_requests, pendingAlerts: st.pending_alerts,
      rollout: latest && this.d.redactor.value(rolloutView(latest)), csrf,
    });
  }

  async slavePage(name: string, csrf: string): Promise<Page> {
    const s = this.slave(name);
    const master = this.d.control.status().master.commit;
    return slavePage({
      slave: this.scrub(s), masterCommit: master, csrf,
      distance: await this.d.distance.between(master, s.commit),
      checks: this.d.store.slaves.history(this.d.config.stack, name, 200).map((c) => ({ ...c, error: c.error && this.d.redactor.text(c.error) })),
      deploys: this.d.store.deploys.list(this.d.config.stack, name, 30).map((r) => ({ ...r, error: r.error && this.d.redactor.text(r.error) })),
      actions: this.actions.get(name) ?? [],
    });
  }

  buildLog(name: string, deployId: string): Page {
    this.slave(name);
    const id = Number(deployId);
    if (!Number.isSafeInteger(id) || id <= 0) throw new HttpError(400, `"${deployId}" is not a deploy id`);
    const row = this.d.store.deploys.list(this.d.config.stack, name, 10_000).find((r) => r.id === id);
    if (!row) throw new HttpError(404, `${name} has no deploy ${id}`);
    if (!row.build_log_path) throw new HttpError(404, `deploy ${id} of ${name} kept no build log`);
    // Only files under D8_HOME are shown, whatever a row says.
    const file = path.resolve(row.build_log_path);
    if (!file.startsWith(d8Home() + path.sep)) throw new HttpError(404, `the build log of deploy ${id} is outside D8_HOME`);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new HttpError(404, `the build log of deploy ${id} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); it may have been cleaned up`);
    }
    try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* shown as stored */ }
    return buildLogPage(name, id, this.d.redactor.text(text));
  }

  /** Every open request, then the decided ones newest first, a page at a time (`?before=<id>`). */
  requests(csrf: string, query: URLSearchParams): Page {
    const raw = query.get('before');
    const before = raw === null || raw === '' ? undefined : RequestIdSchema.safeParse(raw);
    if (before && !before.success) throw new HttpError(400, `before must be a request id like req-0001 (not "${raw!.slice(0, 80)}")`);
    const spend = spendReport(this.d.store.spend, this.d.config.budgets ?? {}, monthOf(Date.now()));
    const open = this.d.store.requests.list({ open: true });
    const decided = this.d.store.requests.page({ status: DECIDED, limit: DECIDED_PAGE, ...(before ? { before: before.data } : {}) });
    const scrub = (rs: HumanRequest[]) => rs.map((r) => this.d.redactor.value(r));
    return requestsPage({ open: scrub(open), decided: { requests: scrub(decided.requests), next_before: decided.next_before }, before: before?.data ?? null }, csrf, spend);
  }

  events(query: URLSearchParams): Page {
    const slave = query.get('slave') || undefined;
    const rawCategory = query.get('category') || undefined;
    if (rawCategory && !(EVENT_CATEGORIES as readonly string[]).includes(rawCategory)) {
      throw new HttpError(400, `category must be one of ${EVENT_CATEGORIES.join(', ')} (not "${rawCategory}")`);
    }
    const category = rawCategory as EventCategory | undefined;
    return eventsPage(readEvents(this.d.store.db, this.d.redactor, { slave, category, limit: 300 }), { slave, category });
  }

  /** Starts Retry or Update in the master (as `d8 retry` / the bot's /retry do); the outcome is recorded when it ends. */
  startAction(kind: 'retry' | 'update', name: string, form: Record<string, string>): string {
    const s = this.slave(name);
    const needs = kind === 'update' ? updateNeedsConfirmation(s) : null;
    if (needs && form.confirm !== 'yes') throw new HttpError(400, `${needs}; tick the confirmation box to update anyway`);
    const note: ActionNote = { kind, started_at: new Date().toISOString(), finished_at: null, ok: null, message: `${kind} started from the dashboard` };
    const list = [note, ...(this.actions.get(name) ?? [])].slice(0, 5);
    this.actions.set(name, list);
    this.d.logger.info({ slave: name, action: kind }, `dashboard: ${kind} ${name}`);
    const run = kind === 'retry' ? this.d.control.retry(name) : this.d.control.update(name);
    void run.then(
      (r) => Object.assign(note, { ok: r.ok, message: this.d.redactor.text(r.message), finished_at: new Date().toISOString() }),
      (err: unknown) => Object.assign(note, { ok: false, message: this.d.redactor.text((err as Error).message), finished_at: new Date().toISOString() }),
    );
    return `${kind === 'retry' ? 'Retry' : 'Update'} of ${name} started; its outcome shows here and under Events.`;
  }

  /**
   * Pause, resume or abort the latest rollout, by the rules `d8 rollout` and /rollout use. `form.rollout`
   * is the rollout the page showed: a newer one started since is not touched by a stale click.
   */
  moveRollout(verb: RolloutVerb, form: Record<string, string>): string {
    const stack = this.d.config.stack;
    const shown = form.rollout === undefined ? null : Number(form.rollout);
    const latest = this.d.store.rollouts.latest(stack);
    if (shown !== null && latest && latest.id !== shown) {
      throw new HttpError(409, `rollout ${shown} is no longer the latest (rollout ${latest.id} of ${latest.commit.slice(0, 7)} is): reload the page and try again`);
    }
    try {
      const { message } = moveRollout(this.d.store.rollouts, stack, this.d.config.rollout !== undefined, verb);
      this.d.logger.info({ verb }, `dashboard: ${message}`);
      return message;
    } catch (err) {
      if (err instanceof RolloutError) throw new HttpError(409, err.message);
      throw err;
    }
  }

  /** One decision through the RequestService the CLI and the bot use; typed errors become HTTP statuses. */
  decide(id: string, decision: string, form: Record<string, string>): string {
    if (!(DECISIONS as readonly string[]).includes(decision)) throw new HttpError(404, `no decision "${decision}" (approve, reject, postpone, complete)`);
    const note = (form.reason ?? form.note ?? '').trim();
    if (note.length > NOTE_MAX) throw new HttpError(400, `the note is ${note.length} characters; at most ${NOTE_MAX}`);
    const d = decision as Decision;
    try {
      const r = decideRequest(this.d.store.requests, id, d, note, 'dashboard');
      this.d.logger.info({ request_id: id, decision: d }, `dashboard: request ${id} ${DECISION_PAST[d]}`);
      const follow = d === 'approve' && r.action ? ` The master runs the ${r.action.kind} of ${r.action.slave} at its next check.` : '';
      return `${id} ${DECISION_PAST[d]}: ${r.title}.${follow}`;
    } catch (err) {
      throw requestErrorToHttp(err);
    }
  }

  private scrub(s: SlaveStatus): SlaveStatus {
    return { ...s, last_error: s.last_error && this.d.redactor.text(s.last_error) };
  }
}
