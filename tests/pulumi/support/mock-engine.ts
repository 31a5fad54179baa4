/**
 * A recorder around pulumi.runtime.setMocks: every resource the program registers, with the inputs
 * the engine would receive (secrets still wrapped), its URN and the options it was declared with.
 */
import * as pulumi from '@pulumi/pulumi';

export const PROJECT = 'd8-fleet';

export interface Registered {
  type: string;
  name: string;
  /** Inputs as serialized for the engine: secrets are `{ [specialSigKey]: specialSecretSig, value }`. */
  inputs: Record<string, unknown>;
  custom: boolean;
  urn: string;
  /** Options at declaration (seen through a transformation inherited from the top-level component). */
  opts: pulumi.CustomResourceOptions & pulumi.ComponentResourceOptions;
  /** Name of the parent resource, or null for a top-level one. */
  parentName: string | null;
  resource: pulumi.Resource;
}

export interface MockState {
  /** What newResource returns as state for a resource (defaults: its inputs). */
  state?: (type: string, name: string, inputs: Record<string, unknown>) => Record<string, unknown>;
}

export interface MockSession {
  /** Pass to createFleet's `resourceOptions` so children's options are recorded too. */
  resourceOptions: pulumi.ComponentResourceOptions;
  /** Waits until everything declared so far is registered; returns the resources by name. */
  settle(): Promise<Map<string, Registered>>;
  /** Names seen by the mock monitor so far (registration order). */
  registeredNames(): string[];
}

/** The resolved value of an output (mocks run as an update, so every value is known). */
export function valueOf<T>(output: pulumi.Input<T>): Promise<T> {
  return new Promise<T>((resolve) => pulumi.output(output).apply((v) => { resolve(v as T); return v; }));
}

export function isSecretInput(v: unknown): boolean {
  return !!v && typeof v === 'object'
    && (v as Record<string, unknown>)[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig;
}

/** The plain value of an input that may be wrapped as a secret. */
export function unwrap(v: unknown): unknown {
  return isSecretInput(v) ? (v as { value: unknown }).value : v;
}

/** A fresh mock engine for `stack` (project d8-fleet, an update, not a preview). */
export async function mockEngine(stack: string, mock: MockState = {}): Promise<MockSession> {
  const monitor = new Map<string, { type: string; name: string; inputs: Record<string, unknown>; custom: boolean }>();
  const order: string[] = [];
  await pulumi.runtime.setMocks({
    newResource: (args) => {
      const inputs = args.inputs as Record<string, unknown>;
      monitor.set(args.name, { type: args.type, name: args.name, inputs, custom: !!args.custom });
      order.push(args.name);
      const state = mock.state ? mock.state(args.type, args.name, inputs) : inputs;
      return { id: args.custom ? `${args.name}-id` : undefined, state };
    },
    call: (args) => args.inputs,
  }, PROJECT, stack, false);

  const declared: Array<{ resource: pulumi.Resource; opts: Registered['opts'] }> = [];
  const record: pulumi.ResourceTransformation = (args) => {
    declared.push({ resource: args.resource, opts: args.opts as Registered['opts'] });
    return undefined;
  };

  return {
    resourceOptions: { transformations: [record] },
    registeredNames: () => [...order],
    async settle() {
      const out = new Map<string, Registered>();
      for (const d of declared) {
        const urn = await valueOf(d.resource.urn);
        const name = urn.split('::').pop()!;
        const reg = monitor.get(name);
        if (!reg) throw new Error(`resource ${urn} was declared but never registered`);
        const parent = d.opts.parent;
        const parentName = parent ? (await valueOf(parent.urn)).split('::').pop()! : null;
        out.set(name, { ...reg, urn, opts: d.opts, parentName, resource: d.resource });
      }
      return out;
    },
  };
}
