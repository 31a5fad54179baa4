/** HTTP helpers for the dashboard tests: a cookie-keeping client that reads the CSRF token from the page. */
import type { PromFamily } from 'parse-prometheus-text-format';
import { httpRequest, type HttpAnswer } from '../../support/agent-process';

export class DashboardClient {
  cookie = '';
  csrf = '';

  constructor(readonly port: number, readonly host = '127.0.0.1', readonly localAddress?: string) {}

  async request(method: string, path: string, opts: { headers?: Record<string, string>; body?: unknown; form?: Record<string, string> } = {}): Promise<HttpAnswer> {
    const headers: Record<string, string> = { Host: `${this.host}:${this.port}`, ...(this.cookie ? { Cookie: this.cookie } : {}), ...(opts.headers ?? {}) };
    let body = opts.body;
    if (opts.form) {
      body = new URLSearchParams(opts.form).toString();
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
    }
    const r = await httpRequest({ host: this.host, port: this.port, method, path, headers, body, localAddress: this.localAddress, timeoutMs: 30_000 });
    const set = r.headers['set-cookie']?.find((c) => c.startsWith('d8_session='));
    if (set) this.cookie = set.split(';')[0];
    const meta = /<meta name="d8-csrf" content="([^"]*)">/.exec(r.text);
    if (meta && meta[1]) this.csrf = meta[1];
    return r;
  }

  get(path: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    return this.request('GET', path, { headers });
  }

  /** A form POST carrying the session's CSRF token (unless `csrf` says otherwise). */
  post(path: string, fields: Record<string, string> = {}, csrf: string | null = this.csrf, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    return this.request('POST', path, { form: csrf === null ? fields : { _csrf: csrf, ...fields }, headers });
  }
}

/** The value of one sample in a parse-prometheus-text-format result, or undefined. */
export function sample(families: PromFamily[], name: string, labels: Record<string, string> = {}): PromFamily['metrics'][number] | undefined {
  const f = families.find((x) => x.name === name);
  return f?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
}
