/**
 * The long poll behind `GET /api/requests/:id?wait=N`: resolves with the request as soon as it is no
 * longer open (PENDING / POSTPONED) or when the time is up. Decisions made in this process (the bot,
 * the dashboard, the API) wake it at once; those made elsewhere (`d8 requests approve`) are seen by
 * a short poll of the store.
 */
import { isOpen, type HumanRequest } from '../../core/requests';
import type { RequestService } from '../store/requests';

const POLL_MS = 500;

export class DecisionWaits {
  private waiting = 0;

  constructor(private readonly requests: RequestService, readonly max = 500) {}

  get count(): number { return this.waiting; }

  /** `aborted` ends the wait early (the caller hung up). Throws the service's error for an unknown id. */
  async wait(id: string, ms: number, aborted: AbortSignal): Promise<HumanRequest> {
    const first = this.requests.get(id);
    if (!isOpen(first) || ms <= 0) return first;
    this.waiting++;
    return new Promise<HumanRequest>((resolve, reject) => {
      let done = false;
      const settle = (outcome: () => HumanRequest): void => {
        if (done) return;
        done = true;
        this.waiting--;
        clearTimeout(timer);
        clearInterval(poll);
        off();
        aborted.removeEventListener('abort', onAbort);
        try { resolve(outcome()); } catch (err) { reject(err); }
      };
      const latest = (): HumanRequest => this.requests.get(id);
      const onAbort = (): void => settle(() => first);
      const off = this.requests.onChange((e) => { if (e.request.id === id && !isOpen(e.request)) settle(() => e.request); });
      const timer = setTimeout(() => settle(latest), ms);
      const poll = setInterval(() => {
        try {
          const r = latest();
          if (!isOpen(r)) settle(() => r);
        } catch (err) {
          settle(() => { throw err; });
        }
      }, POLL_MS);
      aborted.addEventListener('abort', onAbort);
    });
  }
}
