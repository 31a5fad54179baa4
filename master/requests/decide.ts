/**
 * One decision on a request by a person or a program (the dashboard, the API): the same
 * RequestService transition the CLI and the bot use, refusing a repeat of the current status.
 */
import { DECISION_STATUS, RequestIdSchema, type Decision, type HumanRequest } from '../../core/requests';
import { RequestError, type RequestService } from '../store/requests';

export const DECISION_PAST: Record<Decision, string> = { approve: 'approved', reject: 'rejected', postpone: 'postponed', complete: 'completed' };

/** Thrown when the request already has the status the decision asks for. */
export class AlreadyDecidedError extends Error {
  constructor(readonly request: HumanRequest) {
    super(`${request.id} is already ${request.status}`);
    this.name = 'AlreadyDecidedError';
  }
}

/** `by` says who decided, for the request's notes ("dashboard", "API token billing"). */
export function decideRequest(requests: RequestService, id: string, decision: Decision, note: string, by: string): HumanRequest {
  const idOk = RequestIdSchema.safeParse(id);
  if (!idOk.success) throw new RequestError(`"${id.slice(0, 80)}" is not a request id (they look like req-0001)`, 'invalid');
  const before = requests.get(id);
  if (before.status === DECISION_STATUS[decision]) throw new AlreadyDecidedError(before);
  return requests[decision](id, note ? `${note} (${by})` : `by ${by}`);
}
