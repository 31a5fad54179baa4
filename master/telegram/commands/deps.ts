/** What every command group gets: the master's services, logging and scrubbing, a task tracker. */
import type { ReplyTools } from '../reply';
import type { BotServices } from '../services';

export interface BotDeps extends ReplyTools {
  services: BotServices;
  /** Long work (a deploy) runs outside the update handler, so polling goes on; tracked for stop(). */
  background: Set<Promise<unknown>>;
}

export function inBackground(deps: BotDeps, work: () => Promise<unknown>): void {
  const p = work().catch((err: unknown) => {
    deps.logger.error({ err: deps.redactor.text((err as Error).message) }, 'Telegram: a background action failed');
  });
  deps.background.add(p);
  void p.finally(() => deps.background.delete(p));
}
