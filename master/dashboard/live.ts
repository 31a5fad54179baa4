/** Server-sent events: every open page hears which store topics changed. */
import type { IncomingMessage, ServerResponse } from 'http';
import { SECURITY_HEADERS, HttpError } from './http';
import type { StoreWatch } from './store-watch';
import type { Topic } from './views/layout';

export class LiveHub {
  private readonly clients = new Set<ServerResponse>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(watch: StoreWatch, private readonly maxClients = 100, heartbeatMs = 15_000) {
    this.unsubscribe = watch.onChange((topics) => this.broadcast(topics));
    this.heartbeat = setInterval(() => { for (const c of this.clients) c.write(': keep-alive\n\n'); }, heartbeatMs);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  open(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= this.maxClients) throw new HttpError(503, `too many live connections (${this.maxClients}); close some dashboard tabs`, { 'Retry-After': '30' });
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write('retry: 2000\n: connected\n\n');
    this.clients.add(res);
    const drop = () => this.clients.delete(res);
    req.once('close', drop);
    res.once('error', drop);
  }

  broadcast(topics: Topic[]): void {
    const msg = `event: change\ndata: ${JSON.stringify({ topics, at: new Date().toISOString() })}\n\n`;
    for (const c of this.clients) c.write(msg);
  }

  close(): void {
    this.unsubscribe();
    clearInterval(this.heartbeat);
    for (const c of this.clients) c.end();
    this.clients.clear();
  }
}
