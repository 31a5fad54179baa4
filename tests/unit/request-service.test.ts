/** master/store/requests.ts (the human request service) against a real SQLite file: finding an answered request, and announcing before it. */
import type { Store } from '../../master/store';
import { useTempStore } from '../support/temp-store';

describe('request service', () => {
  const temp = useTempStore();
  let store: Store;
  beforeEach(() => { store = temp(); });

  const update = (slave: string, target: string) => ({ type: 'INFRASTRUCTURE' as const, title: `update ${slave}`, action: { kind: 'update' as const, slave, target_commit: target } });

  it('findByAction finds the latest request for a slave and target commit whatever its status (a rejection is an answer)', () => {
    const a = store.requests.create(update('pc', 'c1'));
    store.requests.reject(a.id, 'no');
    expect(store.requests.findByAction('update', 'pc', 'c1')?.id).toBe(a.id);
    const b = store.requests.create(update('pc', 'c1'));
    store.requests.approve(b.id);
    store.requests.complete(b.id, 'failed: boom');
    expect(store.requests.findByAction('update', 'pc', 'c1')?.id).toBe(b.id);
    expect(store.requests.findByAction('update', 'pc', 'c2')).toBeNull();
    expect(store.requests.findByAction('retry', 'pc', 'c1')).toBeNull();
    expect(store.requests.findByAction('update', 'laptop', 'c1')).toBeNull();
    expect(store.requests.findByAction('update', 'pc')?.id).toBe(b.id);
  });

  it('create(…, { announce }) writes the caller\'s alert first, with the new id, in the same transaction', () => {
    const r = store.requests.create(update('pc', 'c1'), {
      announce: (id) => store.outbox.enqueue({ kind: 'update_failed', slave: 'pc', data: { error_tail: 'auth', request_id: id } }),
    });
    const kinds = store.outbox.recent().map((x) => x.alert);
    expect(kinds.map((a) => a.kind)).toEqual(['update_failed', 'human_request']);
    expect(kinds[0].kind === 'update_failed' && kinds[0].data.request_id).toBe(r.id);
    expect(() => store.requests.create(update('pc', 'c2'), { announce: () => { throw new Error('no'); } })).toThrow('no');
    expect(store.requests.list()).toHaveLength(1);
    expect(store.outbox.pendingCount()).toBe(2);
  });
});
