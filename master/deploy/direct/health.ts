/** The master-side check after an install: GET /api/health on the slave, parsed with the protocol schema. */
import http from 'http';
import { HealthResponseSchema, ROUTES, type HealthResponse } from '../../../core/protocol';

export type HealthProbe = { ok: true; health: HealthResponse } | { ok: false; error: string };

export function fetchHealth(host: string, port: number, timeoutMs = 3000): Promise<HealthProbe> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: ROUTES.health, timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { if (body.length < 256 * 1024) body += d; });
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve({ ok: false, error: `HTTP ${res.statusCode ?? '?'} from ${host}:${port}${ROUTES.health}` });
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          return resolve({ ok: false, error: `${host}:${port}${ROUTES.health} did not answer JSON` });
        }
        const parsed = HealthResponseSchema.safeParse(json);
        if (!parsed.success) {
          const i = parsed.error.issues[0];
          return resolve({ ok: false, error: `${host}:${port}${ROUTES.health} answered an unexpected shape: ${i.path.join('.')} ${i.message}` });
        }
        resolve({ ok: true, health: parsed.data });
      });
      res.on('error', (err) => resolve({ ok: false, error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, error: `${host}:${port}: ${err.code ?? err.message}` }));
  });
}

/** Polls until the agent reports `commit` (or the deadline passes); returns the last probe. */
export async function waitForCommit(host: string, port: number, commit: string, deadlineMs: number): Promise<HealthProbe> {
  const until = Date.now() + deadlineMs;
  let last: HealthProbe = { ok: false, error: 'not checked' };
  for (;;) {
    last = await fetchHealth(host, port);
    if (last.ok && last.health.commit === commit) return last;
    if (Date.now() >= until) return last;
    await new Promise((r) => setTimeout(r, 300));
  }
}
