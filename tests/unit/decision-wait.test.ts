/** master/api/decision-wait.ts: the long poll sees decisions made in this process at once and those of another connection (the CLI) by polling. */
import path from 'path';
import { openStore, type Store } from '../../master/store';
import { DecisionWaits } from '../../master/api/decision-wait';
import { useTempStore } from '../support/temp-store';

describe('DecisionWaits', () => {
  const temp = useTempStore();
  let store: Store;
  let other: Store;
  beforeEach(() => {
    store = temp();
    other = openStore(path.join(path.dirname(store.file), 'master.db'));
  });
  afterEach(() => other.close());

  const never = new AbortController().signal;

  it('a decision through another connection (another process) ends the wait', async () => {
    const r = store.requests.create({ type: 'PAYMENT', title: 'x' });
    const waits = new DecisionWaits(store.requests);
    const t0 = Date.now();
    const p = waits.wait(r.id, 20_000, never);
    expect(waits.count).toBe(1);
    setTimeout(() => other.requests.approve(r.id, 'from the CLI'), 300);
    const got = await p;
    expect(got.status).toBe('APPROVED');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(waits.count).toBe(0);
  });

  it('a decision in this process wakes it at once; a timeout or a hang-up returns it still open', async () => {
    const a = store.requests.create({ type: 'PAYMENT', title: 'a' });
    const waits = new DecisionWaits(store.requests);
    const t0 = Date.now();
    const p = waits.wait(a.id, 20_000, never);
    setTimeout(() => store.requests.reject(a.id), 50);
    expect((await p).status).toBe('REJECTED');
    expect(Date.now() - t0).toBeLessThan(400);
    const b = store.requests.create({ type: 'PAYMENT', title: 'b' });
    expect((await waits.wait(b.id, 200, never)).status).toBe('PENDING');
    const ac = new AbortController();
    const q = waits.wait(b.id, 20_000, ac.signal);
    ac.abort();
    expect((await q).status).toBe('PENDING');
    expect(waits.count).toBe(0);
    await expect(waits.wait('req-0999', 1000, never)).rejects.toThrow(/no human request req-0999/);
  });
});
