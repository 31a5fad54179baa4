/**
 * The auto-approval decision for a new request (pure): the first rule whose type matches and whose
 * cost limit the request's estimated cost is within decides; `approve` still yields to the type's
 * monthly budget, and a request without a matching rule asks a person, as every request did before.
 */
import type { ApprovalRule, Budgets } from '../../core/approval';
import type { RequestType } from '../../core/requests';
import { money } from '../notify/headline';
import type { AutoDecision } from '../store/requests';

export interface RuleInput { type: RequestType; estimated_cost: number | null }

/** "rule 2 (PAYMENT up to 20: approve)": how a request's record names the rule that decided it. */
export function describeRule(rule: ApprovalRule, index: number): string {
  return `rule ${index + 1} (${rule.type}${rule.maxCost !== undefined ? ` up to ${money(rule.maxCost)}` : ''}: ${rule.then})`;
}

function matches(rule: ApprovalRule, r: RuleInput): boolean {
  if (rule.type !== r.type) return false;
  if (rule.maxCost === undefined) return true;
  return r.estimated_cost !== null && r.estimated_cost <= rule.maxCost;
}

/** `spentThisMonth`: approved costs of this request's type in the current month. */
export function autoDecision(r: RuleInput, rules: readonly ApprovalRule[], budgets: Budgets, spentThisMonth: number): AutoDecision {
  const i = rules.findIndex((rule) => matches(rule, r));
  if (i < 0) return { approve: false, note: null };
  const rule = rules[i];
  if (rule.then === 'ask') return { approve: false, note: null };
  const budget = budgets[r.type];
  const cost = r.estimated_cost ?? 0;
  if (budget && spentThisMonth + cost > budget.monthly) {
    return {
      approve: false,
      note: `over budget: ${r.type} has ${money(spentThisMonth)} of ${money(budget.monthly)} approved this month, and this request's ${money(cost)} would make ${money(spentThisMonth + cost)} (${describeRule(rule, i)} would have approved it)`,
    };
  }
  return { approve: true, rule: describeRule(rule, i) };
}
