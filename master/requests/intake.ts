/**
 * Files a request from a program (the requests API): the stack's auto-approval rules and budgets
 * decide, inside the request's own transaction, whether it is approved at once or asks a person.
 */
import type { FleetConfig } from '../../core/stack-config';
import { ApiCreateRequestSchema, type ApiCreateRequestInput, type HumanRequest } from '../../core/requests';
import type { Store } from '../store';
import { RequestError } from '../store/requests';
import { checkBudgets } from './budget-watch';
import { monthOf } from './month';
import { autoDecision } from './rules';

export type IntakeConfig = Pick<FleetConfig, 'stack' | 'approvalRules' | 'budgets'>;

export function fileRequest(store: Store, config: IntakeConfig, input: ApiCreateRequestInput, author: string, now: () => number = Date.now): HumanRequest {
  const parsed = ApiCreateRequestSchema.safeParse(input);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new RequestError(`invalid request: ${i.path.join('.') || '(root)'} ${i.message}`, 'invalid');
  }
  const rules = config.approvalRules ?? [];
  const budgets = config.budgets ?? {};
  const at = now();
  const r = store.requests.create({ ...parsed.data, created_by: author }, {
    now: at,
    decide: (c) => {
      const spent = store.spend.month(monthOf(at)).find((s) => s.type === c.type)?.spent ?? 0;
      return autoDecision(c, rules, budgets, spent);
    },
  });
  if (r.status === 'APPROVED') checkBudgets(store, budgets, config.stack, at);
  return r;
}
