/**
 * API tokens for programs that use the master's HTTP API (issue 16). A token is shown once when made
 * and kept only as a SHA-256 hash; its id travels in the token so the check is one lookup and one
 * constant-time comparison.
 */
import crypto from 'crypto';
import { z } from 'zod';

export const API_SCOPES = ['requests:read', 'requests:write', 'requests:decide', 'tasks:run'] as const;
export const ApiScopeSchema = z.enum(API_SCOPES);
export type ApiScope = z.infer<typeof ApiScopeSchema>;
/** What each scope allows, for --help. */
export const SCOPE_MEANING: Record<ApiScope, string> = {
  'requests:read': 'list and read requests, wait for decisions, read spend',
  'requests:write': 'file requests (and read them)',
  'requests:decide': 'approve, reject, postpone, complete requests (and read them)',
  'tasks:run': 'run tasks on a slave the master picks',
};
/** A scope that also grants others. */
export const SCOPE_IMPLIES: Partial<Record<ApiScope, ApiScope[]>> = {
  'requests:write': ['requests:read'],
  'requests:decide': ['requests:read'],
};

export const TOKEN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const TokenNameSchema = z.string().regex(TOKEN_NAME_RE, 'must be 1-64 letters, digits, dots, dashes or underscores');

export const ApiTokenInfoSchema = z.object({
  id: z.string(),
  name: z.string(),
  scopes: z.array(ApiScopeSchema),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});
export type ApiTokenInfo = z.infer<typeof ApiTokenInfoSchema>;

const TOKEN_RE = /^d8api_([a-f0-9]{12})_([A-Za-z0-9_-]{43})$/;
/** An API token (or a cut-off piece of one) inside any text: core/redact.ts keeps its id, drops the rest. */
export const API_TOKEN_IN_TEXT = /(d8api_[a-f0-9]{12}_)[A-Za-z0-9_-]+/g;

/** A new token and its id: `d8api_<id>_<43 random base64url characters>` (256 bits). */
export function newApiToken(): { id: string; token: string } {
  const id = crypto.randomBytes(6).toString('hex');
  return { id, token: `d8api_${id}_${crypto.randomBytes(32).toString('base64url')}` };
}

/** The id inside a well-formed token, or null. */
export function apiTokenId(token: string): string | null {
  return TOKEN_RE.exec(token)?.[1] ?? null;
}

export const hashApiToken = (token: string): string => crypto.createHash('sha256').update(token, 'utf8').digest('hex');

/** Whether `granted` allows `needed`, directly or through an implying scope. */
export function scopeAllows(granted: readonly ApiScope[], needed: ApiScope): boolean {
  return granted.some((g) => g === needed || (SCOPE_IMPLIES[g] ?? []).includes(needed));
}
