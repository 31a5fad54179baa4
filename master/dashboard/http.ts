/** Small helpers over node:http for the dashboard: answers, cookies, a size-limited form reader. */
import type { IncomingMessage, ServerResponse } from 'http';
import { RequestError } from '../store/requests';
import { AlreadyDecidedError } from '../requests/decide';

/** A request answered with an error page (or JSON for API callers): status and a message naming the fix. */
export class HttpError extends Error {
  /** `field`: the input field (or query parameter) a 400 is about, for API callers. */
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}, readonly field?: string) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The request service's typed errors as HTTP answers (pages and API alike); anything else is returned as is. */
export function requestErrorToHttp(err: unknown): unknown {
  if (err instanceof AlreadyDecidedError) return new HttpError(409, err.message);
  if (err instanceof RequestError) {
    return new HttpError({ not_found: 404, invalid: 400, bad_transition: 409, unreadable: 409 }[err.code], err.message.replace(/ \(list them with `d8 requests list`\)/, ''));
  }
  return err;
}

/** Headers every dashboard answer carries: no caching of fleet data, no framing, scripts only from us. */
export const SECURITY_HEADERS: Record<string, string> = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  // same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on form posts, which the Origin check refuses.
  'Referrer-Policy': 'same-origin',
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
};

export function send(res: ServerResponse, status: number, contentType: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

export const sendHtml = (res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void =>
  send(res, status, 'text/html; charset=utf-8', html, headers);

export const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void =>
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body), headers);

export function redirect(res: ServerResponse, location: string, headers: Record<string, string> = {}): void {
  res.writeHead(303, { ...SECURITY_HEADERS, Location: location, 'Content-Length': '0', ...headers });
  res.end();
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    try { out[k] = decodeURIComponent(part.slice(i + 1).trim()); } catch { /* a malformed cookie is ignored */ }
  }
  return out;
}

/** Reads the body as bytes, at most `limit` (413 beyond it, also when Content-Length says so up front). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new HttpError(413, `request body is larger than the limit of ${limit} bytes`, { Connection: 'close' });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `request body is larger than the limit of ${limit} bytes`, { Connection: 'close' });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A JSON object body (415 for another Content-Type, 400 for bad JSON or a non-object). */
export async function readJsonObject(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, `send the body as application/json (Content-Type was "${type.slice(0, 80)}")`);
  const text = (await readBody(req, limit)).toString('utf8');
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch (err) { throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message.slice(0, 120)}`); }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new HttpError(400, 'request body must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** Reads a url-encoded (or JSON object) body of at most `limit` bytes into string fields. */
export async function readForm(req: IncomingMessage, limit: number): Promise<Record<string, string>> {
  const text = (await readBody(req, limit)).toString('utf8');
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/json') {
    let parsed: unknown;
    try { parsed = JSON.parse(text || '{}'); } catch (err) { throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message.slice(0, 120)}`); }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new HttpError(400, 'request body must be a JSON object');
    return Object.fromEntries(Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
  }
  if (type !== '' && type !== 'application/x-www-form-urlencoded') {
    throw new HttpError(415, `unsupported Content-Type "${type}": send application/x-www-form-urlencoded or application/json`);
  }
  return Object.fromEntries(new URLSearchParams(text));
}

/** The client's address (X-Forwarded-For's first hop only when the proxy is trusted). */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  const fwd = trustProxy ? String(req.headers['x-forwarded-for'] ?? '').split(',')[0].trim() : '';
  const a = fwd || req.socket.remoteAddress || 'unknown';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export const escapeHtml = (s: unknown): string =>
  String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c] as string));
