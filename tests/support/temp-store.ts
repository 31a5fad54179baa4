/** A fresh master store in a temp dir for each test of a describe block (removed afterwards). */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { openStore, type Store } from '../../master/store';

export function useTempStore(secrets: string[] = []): () => Store {
  let dir = '';
  let store: Store | null = null;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-store-'));
    store = openStore(path.join(dir, 'master.db'), secrets);
  });
  afterEach(() => {
    store?.close();
    store = null;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    if (!store) throw new Error('useTempStore(): the store exists only inside a test');
    return store;
  };
}
