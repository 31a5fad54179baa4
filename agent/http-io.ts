/**
 * Small helpers over node's http module: JSON answers and a size-limited body reader.
 */
import type { IncomingMessage, ServerResponse } from 'http';
import { LIMITS, type ErrorResponse } from '../core/protocol';

/** A request the agent answers with a JSON error: status, message and (for 400) the field. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  const body: ErrorResponse = err.field === undefined ? { error: err.message } : { error: err.message, field: err.field };
  sendJson(res, err.status, body, err.headers);
}

/**
 * Reads the whole body, at most `limit` bytes. Beyond the limit (by Content-Length up front, or by
 * counting while reading) it throws a 413 and marks the connection for closing, since the rest of
 * the body is never read.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, limit: number): Promise<Buffer> {
  const tooLarge = (): HttpError => {
    res.setHeader('Connection', 'close');
    return new HttpError(413, `request body is larger than the limit of ${limit} bytes`);
  };
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null, value?: Buffer): void => {
      if (done) return;
      done = true;
      req.removeListener('data', onData);
      if (err) reject(err);
      else resolve(value as Buffer);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        finish(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => finish(null, Buffer.concat(chunks, size)));
    req.once('error', (e) => finish(new HttpError(400, `could not read the request body: ${e.message}`)));
    req.once('aborted', () => finish(new HttpError(400, 'the client aborted the request')));
  });
}

/**
 * The deepest nesting of arrays and objects in a JSON text, counted without parsing it (brackets
 * inside strings are skipped); stops counting once `cap` is exceeded.
 */
export function jsonDepthExceeds(text: Buffer, cap: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > cap) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * Parses a JSON body; an empty, malformed or too deeply nested body is a 400 that says so. The depth
 * is checked before parsing: parsing deep nesting costs memory out of proportion to the body's size.
 */
export function parseJson(body: Buffer, maxDepth: number = LIMITS.maxJsonDepth): unknown {
  if (body.length === 0) throw new HttpError(400, 'request body is empty: send a JSON object');
  if (jsonDepthExceeds(body, maxDepth)) throw new HttpError(400, `request body nests JSON deeper than ${maxDepth} levels`);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}
