/**
 * Bearer tokens: what makes one acceptable, comparing them in constant time, and the generated
 * ones kept in D8_HOME (the dev stack's agent token, the dashboard token).
 */
import crypto from 'crypto';
import fs from 'fs';

const MIN_TOKEN_LENGTH = 24;
/** Tokens that appear in docs and examples; an agent with one of these is an open door. */
export const WELL_KNOWN_TOKENS = new Set([
  'changeme', 'change-me', 'secret', 'token', 'password', 'default', 'd8-token', 'd8_token',
  'your-token-here', 'CHANGE_ME_TO_A_LONG_RANDOM_TOKEN', 'd8-default-token-change-me',
]);

/** Why a token is unacceptable, or null when it is fine. Shared by the agent, the config and the dashboard. */
export function weakTokenReason(token: string | undefined): string | null {
  if (!token) return 'no token is set';
  if (token.length < MIN_TOKEN_LENGTH) return `the token is only ${token.length} characters; at least ${MIN_TOKEN_LENGTH} are required`;
  if (WELL_KNOWN_TOKENS.has(token) || WELL_KNOWN_TOKENS.has(token.toLowerCase())) return 'the token is a well-known default';
  if (new Set(token).size < 6) return 'the token is too repetitive to be random';
  return null;
}

const sha256 = (s: string): Buffer => crypto.createHash('sha256').update(s, 'utf8').digest();

/**
 * Constant-time comparison of two secrets of any length: both are hashed first, so neither the
 * content nor the length of the expected one leaks through timing.
 */
export function sameSecret(a: string, b: string): boolean {
  return crypto.timingSafeEqual(sha256(a), sha256(b));
}

/**
 * The strong token kept in `file` (its mode made 0600), or a new random one written there with
 * mode 0600 when the file is missing or holds a weak token. The directory must exist.
 */
export function tokenFile(file: string): { token: string; generated: boolean } {
  try {
    const existing = fs.readFileSync(file, 'utf8').trim();
    if (!weakTokenReason(existing)) {
      fs.chmodSync(file, 0o600);
      return { token: existing, generated: false };
    }
  } catch { /* first use */ }
  const token = crypto.randomBytes(32).toString('base64url');
  fs.writeFileSync(file, token + '\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return { token, generated: true };
}
