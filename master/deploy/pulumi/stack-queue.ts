/**
 * Pulumi operations on one stack run one after another, in this process (the Pulumi lock would
 * refuse a second one anyway, but as an error): a promise chain per stack key.
 */
const tails = new Map<string, Promise<unknown>>();

export function serialize<T>(key: string, op: () => Promise<T>): Promise<T> {
  const prev = tails.get(key) ?? Promise.resolve();
  const run = prev.then(op, op);
  const tail = run.then(() => undefined, () => undefined);
  tails.set(key, tail);
  void tail.then(() => { if (tails.get(key) === tail) tails.delete(key); });
  return run;
}

export function queuedKeys(): string[] {
  return [...tails.keys()];
}
