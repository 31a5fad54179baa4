/**
 * API tokens (table api_tokens): only a SHA-256 hash of each token is kept; the token itself is
 * returned once by `create` and never stored, logged or listed. A revoked token stays listed (who
 * had access, and when it ended) and never authenticates again.
 */
import type { Db } from './db';
import { nowIso, stmt } from './db';
import { sameSecret } from '../../core/tokens';
import {
  ApiScopeSchema, ApiTokenInfoSchema, TokenNameSchema, apiTokenId, hashApiToken, newApiToken,
  type ApiScope, type ApiTokenInfo,
} from '../../core/api-tokens';

export class ApiTokenError extends Error {
  constructor(message: string, readonly code: 'invalid' | 'not_found' | 'exists') {
    super(message);
    this.name = 'ApiTokenError';
  }
}

interface Row { id: string; name: string; scopes: string; hash: string; created_at: string; last_used_at: string | null; revoked_at: string | null }

const info = (r: Row): ApiTokenInfo => ApiTokenInfoSchema.parse({ ...r, scopes: JSON.parse(r.scopes) as unknown });

/** last_used_at is written at most this often per token (not on every request). */
const TOUCH_EVERY_MS = 60_000;

export class ApiTokenStore {
  constructor(private readonly db: Db) {}

  /** Makes a token for `name`; the returned `token` is the only copy there will ever be. */
  create(name: string, scopes: readonly string[]): ApiTokenInfo & { token: string } {
    const n = TokenNameSchema.safeParse(name);
    if (!n.success) throw new ApiTokenError(`--name "${name.slice(0, 80)}" ${n.error.issues[0].message}`, 'invalid');
    const parsed: ApiScope[] = [];
    for (const s of scopes) {
      const p = ApiScopeSchema.safeParse(s);
      if (!p.success) throw new ApiTokenError(`unknown scope "${s.slice(0, 80)}" (scopes: ${ApiScopeSchema.options.join(', ')})`, 'invalid');
      if (!parsed.includes(p.data)) parsed.push(p.data);
    }
    if (!parsed.length) throw new ApiTokenError('a token needs at least one scope', 'invalid');
    const { id, token } = newApiToken();
    return this.db.transaction(() => {
      if (stmt(this.db, 'SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at IS NULL').get(name)) {
        throw new ApiTokenError(`a live token named "${name}" exists; revoke it first (d8 tokens revoke ${name}) or pick another name`, 'exists');
      }
      stmt(this.db, 'INSERT INTO api_tokens (id, name, scopes, hash, created_at) VALUES (?, ?, ?, ?, ?)').run(id, name, JSON.stringify(parsed), hashApiToken(token), nowIso());
      return { ...this.get(id), token };
    }).immediate();
  }

  get(id: string): ApiTokenInfo {
    const r = stmt(this.db, 'SELECT * FROM api_tokens WHERE id = ?').get(id) as Row | undefined;
    if (!r) throw new ApiTokenError(`no API token ${id}`, 'not_found');
    return info(r);
  }

  list(opts: { all?: boolean } = {}): ApiTokenInfo[] {
    const rows = stmt(this.db, `SELECT * FROM api_tokens ${opts.all ? '' : 'WHERE revoked_at IS NULL'} ORDER BY created_at, id`).all() as Row[];
    return rows.map(info);
  }

  /** Revokes the live token with this id or name; returns it. */
  revoke(idOrName: string): ApiTokenInfo {
    return this.db.transaction(() => {
      const r = stmt(this.db, 'SELECT * FROM api_tokens WHERE (id = ? OR name = ?) AND revoked_at IS NULL').get(idOrName, idOrName) as Row | undefined;
      if (!r) throw new ApiTokenError(`no live API token with id or name "${idOrName.slice(0, 80)}" (d8 tokens list shows them)`, 'not_found');
      stmt(this.db, 'UPDATE api_tokens SET revoked_at = ? WHERE id = ?').run(nowIso(), r.id);
      return this.get(r.id);
    }).immediate();
  }

  /** The live token `token` is, or null: one lookup by the id it carries, one constant-time comparison. */
  verify(token: string, now: number = Date.now()): ApiTokenInfo | null {
    const id = apiTokenId(token);
    if (!id) return null;
    const r = stmt(this.db, 'SELECT * FROM api_tokens WHERE id = ?').get(id) as Row | undefined;
    if (!r || !sameSecret(hashApiToken(token), r.hash) || r.revoked_at) return null;
    if (!r.last_used_at || Date.parse(r.last_used_at) < now - TOUCH_EVERY_MS) {
      stmt(this.db, 'UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(nowIso(now), id);
      r.last_used_at = nowIso(now);
    }
    return info(r);
  }
}
