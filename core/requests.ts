/** Human requests: what the master (or anyone) asks a person to decide or do. One contract for the store, the CLI, the bot, alerts and the dashboard. */
import { z } from 'zod';

export const REQUEST_TYPES = ['PAYMENT', 'DESIGN_DECISION', 'API_ACCOUNT', 'CONTENT_APPROVAL', 'STRATEGIC_DECISION', 'INFRASTRUCTURE'] as const;
export const RequestTypeSchema = z.enum(REQUEST_TYPES);
export type RequestType = z.infer<typeof RequestTypeSchema>;

export const REQUEST_STATUSES = ['PENDING', 'APPROVED', 'REJECTED', 'POSTPONED', 'COMPLETED'] as const;
export const RequestStatusSchema = z.enum(REQUEST_STATUSES);
export type RequestStatus = z.infer<typeof RequestStatusSchema>;

export const PRIORITIES = ['low', 'normal', 'high', 'urgent'] as const;
export const PrioritySchema = z.enum(PRIORITIES);
export type Priority = z.infer<typeof PrioritySchema>;

/** A machine-readable follow-up: approving an `update` request runs the update. */
export const RequestActionSchema = z.object({
  kind: z.enum(['update', 'retry']),
  slave: z.string().min(1),
  stack: z.string().min(1).optional(),
  /** The master commit the update targets (an approval for an older commit is not reused). */
  target_commit: z.string().optional(),
}).strict();
export type RequestAction = z.infer<typeof RequestActionSchema>;

export const REQUEST_ID_RE = /^req-\d{4,}$/;
export const RequestIdSchema = z.string().regex(REQUEST_ID_RE, 'must look like req-0001');
/** Ids are numbered in the order requests are filed: req-0042 is the 42nd. */
export const requestSeq = (id: string): number => Number(id.slice('req-'.length));

export const CreateRequestSchema = z.object({
  type: RequestTypeSchema,
  title: z.string().trim().min(1, 'must not be empty').max(200),
  description: z.string().max(10_000).default(''),
  priority: PrioritySchema.default('normal'),
  estimated_cost: z.number().nonnegative().nullable().default(null),
  created_by: z.string().trim().min(1).max(100).default('cli'),
  action: RequestActionSchema.nullable().default(null),
}).strict();
export type CreateRequestInput = z.input<typeof CreateRequestSchema>;

export const HumanRequestSchema = z.object({
  id: RequestIdSchema,
  type: RequestTypeSchema,
  status: RequestStatusSchema,
  title: z.string(),
  description: z.string(),
  priority: PrioritySchema,
  estimated_cost: z.number().nullable(),
  created_by: z.string(),
  notes: z.string().nullable(),
  action: RequestActionSchema.nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  resolved_at: z.string().nullable(),
  /** When it was approved (its cost counts against that month's budget). */
  approved_at: z.string().nullable().default(null),
  /** The auto-approval rule that approved it, or null when a person did. */
  auto_rule: z.string().nullable().default(null),
});
export type HumanRequest = z.infer<typeof HumanRequestSchema>;

/** What a program files over the API: the CLI's schema, without follow-up actions (those are the master's) or a self-chosen author (the token's name is). */
export const ApiCreateRequestSchema = CreateRequestSchema.omit({ action: true, created_by: true });
export type ApiCreateRequestInput = z.input<typeof ApiCreateRequestSchema>;

/** One page of a list, newest first; `next_before` asks for the next (older) page, null on the last one. */
export const RequestPageSchema = z.object({
  requests: z.array(HumanRequestSchema),
  next_before: RequestIdSchema.nullable(),
});
export type RequestPage = z.infer<typeof RequestPageSchema>;

export const LIST_LIMIT_DEFAULT = 100;
export const LIST_LIMIT_MAX = 1000;

/** The query of `GET /api/requests` (strings, as they come in a URL): `?status=&limit=&before=`. */
export const ListRequestsQuerySchema = z.object({
  status: z.string().transform((s) => s.toUpperCase()).pipe(RequestStatusSchema).optional(),
  limit: z.string().regex(/^\d+$/, `must be an integer from 1 to ${LIST_LIMIT_MAX}`).transform(Number)
    .pipe(z.number().int().min(1, `must be an integer from 1 to ${LIST_LIMIT_MAX}`).max(LIST_LIMIT_MAX, `must be an integer from 1 to ${LIST_LIMIT_MAX}`)).default(String(LIST_LIMIT_DEFAULT)),
  /** Only requests filed before this id: the previous page's `next_before`. */
  before: RequestIdSchema.optional(),
});
export type ListRequestsQuery = z.output<typeof ListRequestsQuerySchema>;

export const DECISIONS = ['approve', 'reject', 'postpone', 'complete'] as const;
export const DecisionSchema = z.enum(DECISIONS);
export type Decision = z.infer<typeof DecisionSchema>;
export const DECISION_STATUS: Record<Decision, RequestStatus> = { approve: 'APPROVED', reject: 'REJECTED', postpone: 'POSTPONED', complete: 'COMPLETED' };

export const DecisionInputSchema = z.object({
  decision: DecisionSchema,
  note: z.string().trim().max(500).optional(),
}).strict();
export type DecisionInput = z.input<typeof DecisionInputSchema>;

/** Still waiting for a person. */
export const isOpen = (r: Pick<HumanRequest, 'status'>): boolean => r.status === 'PENDING' || r.status === 'POSTPONED';

/** Allowed transitions: PENDING → APPROVED | REJECTED | POSTPONED; POSTPONED → back to a decision; APPROVED → COMPLETED. */
export const TRANSITIONS: Record<RequestStatus, RequestStatus[]> = {
  PENDING: ['APPROVED', 'REJECTED', 'POSTPONED'],
  POSTPONED: ['APPROVED', 'REJECTED', 'PENDING'],
  APPROVED: ['COMPLETED'],
  REJECTED: [],
  COMPLETED: [],
};
