/**
 * How a failed Bot API call is classified: retry later (network, 5xx, 429 with its retry_after),
 * or permanent for that chat (400 chat not found, 403 blocked), so one bad chat does not jam the outbox.
 */
import { TelegramError } from 'telegraf';

export type TelegramFailure =
  | { kind: 'rate_limited'; retryAfterMs: number; message: string }
  | { kind: 'unavailable'; message: string }
  | { kind: 'chat_rejected'; message: string }
  | { kind: 'unauthorized'; message: string }
  | { kind: 'bad_request'; message: string };

export function classifyTelegramError(err: unknown): TelegramFailure {
  if (err instanceof TelegramError) {
    const message = `${err.code}: ${err.description}`;
    if (err.code === 429) {
      const seconds = Number(err.parameters?.retry_after ?? 5);
      return { kind: 'rate_limited', retryAfterMs: Math.max(1, Number.isFinite(seconds) ? seconds : 5) * 1000, message };
    }
    if (err.code >= 500) return { kind: 'unavailable', message };
    if (err.code === 401 || err.code === 404) return { kind: 'unauthorized', message };
    if (err.code === 403 || (err.code === 400 && /chat not found|user not found|chat_id is empty|PEER_ID_INVALID/i.test(err.description))) {
      return { kind: 'chat_rejected', message };
    }
    return { kind: 'bad_request', message };
  }
  const e = err as { name?: string; message?: string; code?: string };
  return { kind: 'unavailable', message: `${e?.code ?? e?.name ?? 'Error'}: ${e?.message ?? String(err)}` };
}

/** Failures that prove the request never reached Telegram (nothing can have been delivered). */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

/**
 * Whether a failed call may still have been carried out: Telegram answered nothing (the connection
 * was cut or timed out after the request went out), so a retry may duplicate it.
 */
export function mayHaveArrived(err: unknown): boolean {
  if (err instanceof TelegramError) return false;
  const e = err as { code?: unknown; errno?: unknown; cause?: { code?: unknown } } | null;
  const code = String(e?.code ?? e?.errno ?? e?.cause?.code ?? '');
  return !NEVER_SENT.has(code);
}

/** The "message is not modified" answer to an edit that changes nothing: harmless. */
export function isNotModified(err: unknown): boolean {
  return err instanceof TelegramError && err.code === 400 && /message is not modified/i.test(err.description);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs one Bot API call for an interactive reply, honouring up to `tries` 429 retry_after answers
 * (each capped at `maxWaitMs`); other failures are thrown at once.
 */
export async function withRetryAfter<T>(call: () => Promise<T>, tries = 3, maxWaitMs = 60_000): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (err) {
      const f = classifyTelegramError(err);
      if (f.kind !== 'rate_limited' || i >= tries || f.retryAfterMs > maxWaitMs) throw err;
      await sleep(f.retryAfterMs);
    }
  }
}
