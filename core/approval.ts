/**
 * Auto-approval rules, monthly budgets and spend (issue 16): the stack-config shapes
 * (`d8:approvalRules`, `d8:budgets`, `d8:dailySummary`, `d8:requestsApi`) and the spend report
 * that the CLI, the API, Telegram and the dashboard all show.
 */
import { z } from 'zod';
import { RequestTypeSchema } from './requests';

/** One rule: the first rule whose type (and cost limit) matches a request decides it. */
export const ApprovalRuleSchema = z.object({
  type: RequestTypeSchema,
  /** The rule matches only requests with an estimated cost at most this (a request without a cost does not match). */
  maxCost: z.number({ invalid_type_error: 'must be a number' }).nonnegative('must not be negative').optional(),
  then: z.enum(['approve', 'ask'], { errorMap: () => ({ message: 'must be approve or ask' }) }),
}).strict();
export type ApprovalRule = z.infer<typeof ApprovalRuleSchema>;

export const BudgetSchema = z.object({
  monthly: z.number({ invalid_type_error: 'must be a number' }).positive('must be more than 0'),
}).strict();
export const BudgetsSchema = z.record(RequestTypeSchema, BudgetSchema);
export type Budgets = z.infer<typeof BudgetsSchema>;

export const TIME_OF_DAY_RE = /^([01]\d|2[0-3]):[0-5]\d$/;

/** The daily summary on Telegram: at `at` (HH:MM, the master's local time), when there is something to say. */
export const DailySummaryConfigSchema = z.object({
  enabled: z.boolean().default(true),
  at: z.string().regex(TIME_OF_DAY_RE, 'must be a time of day like 09:00').default('09:00'),
}).strict();
export type DailySummaryConfig = z.infer<typeof DailySummaryConfigSchema>;

/** The requests API on the dashboard's HTTP server. */
export const RequestsApiConfigSchema = z.object({
  /** Requests per minute per API token (a burst of this many, refilled evenly). */
  ratePerMinute: z.number().int('must be an integer').min(1, 'must be at least 1').max(100_000).default(120),
}).strict();
export type RequestsApiConfig = z.infer<typeof RequestsApiConfigSchema>;

/** Budget alert levels, in percent of the monthly budget. */
export const BUDGET_THRESHOLDS = [80, 100] as const;
export const BudgetThresholdSchema = z.union([z.literal(80), z.literal(100)]);
export type BudgetThreshold = z.infer<typeof BudgetThresholdSchema>;

export const MONTH_RE = /^\d{4}-(0[1-9]|1[0-2])$/;
export const MonthSchema = z.string().regex(MONTH_RE, 'must be a month like 2026-11');

export const SpendLineSchema = z.object({
  type: RequestTypeSchema,
  /** Sum of the estimated costs of the requests approved this month (approved or completed now). */
  spent: z.number(),
  approved: z.number().int(),
  budget: z.number().nullable(),
  /** spent / budget in percent, or null without a budget. */
  percent: z.number().nullable(),
});
export type SpendLine = z.infer<typeof SpendLineSchema>;

export const SpendReportSchema = z.object({
  month: MonthSchema,
  lines: z.array(SpendLineSchema),
  total: z.number(),
});
export type SpendReport = z.infer<typeof SpendReportSchema>;
