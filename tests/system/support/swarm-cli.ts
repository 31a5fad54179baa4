/**
 * The program's swarm service spec (infra/swarm-spec.ts) as `docker service create` / `update`
 * arguments, so a test can run exactly what the program declares on a real swarm without the docker
 * provider (which cannot be built here). A spec field this translation does not know is an error,
 * never silently dropped: a new field in the program breaks the test until it is translated too.
 */
import { execFileSync, spawnSync } from 'child_process';
import { shQuote } from '../../../core/shell-quote';
import type { SwarmServiceSpec } from '../../../infra/swarm-spec';

function only(where: string, obj: object, known: string[]): void {
  const extra = Object.keys(obj).filter((k) => !known.includes(k));
  if (extra.length) throw new Error(`swarm-cli: ${where}.${extra.join(', ')} is not translated to docker CLI flags`);
}

/** Exec-form health test (`['CMD', …]`) as the shell command line the CLI takes. */
function healthCmd(tests: string[]): string {
  if (tests[0] !== 'CMD') throw new Error(`swarm-cli: healthcheck ${tests[0]} is not translated`);
  return tests.slice(1).map(shQuote).join(' ');
}

/**
 * The one global service of the layout before per-slave services (what a stack deployed then runs):
 * a slave's spec without its placement, one task per node.
 */
export type GlobalServiceSpec = Omit<SwarmServiceSpec, 'mode' | 'taskSpec'> & {
  mode: { global: true };
  taskSpec: Omit<SwarmServiceSpec['taskSpec'], 'placement'>;
};

export function globalServiceSpec(spec: SwarmServiceSpec, name: string): GlobalServiceSpec {
  const { placement: _placement, ...taskSpec } = spec.taskSpec;
  return { ...spec, name, mode: { global: true }, taskSpec };
}

export function serviceCreateArgs(spec: SwarmServiceSpec | GlobalServiceSpec): string[] {
  only('spec', spec, ['name', 'mode', 'labels', 'taskSpec', 'updateConfig', 'rollbackConfig']);
  const t = spec.taskSpec;
  only('taskSpec', t, ['containerSpec', 'logDriver', 'restartPolicy', 'placement', 'networksAdvanceds']);
  const c = t.containerSpec;
  only('containerSpec', c, ['image', 'env', 'mounts', 'secrets', 'healthcheck', 'stopGracePeriod']);
  only('healthcheck', c.healthcheck, ['tests', 'interval', 'timeout', 'retries', 'startPeriod']);
  const args = ['service', 'create', '--detach', '--name', spec.name];
  if ('global' in spec.mode) {
    only('mode', spec.mode, ['global']);
    args.push('--mode', 'global');
  } else {
    only('mode', spec.mode, ['replicated']);
    args.push('--mode', 'replicated', '--replicas', String(spec.mode.replicated.replicas));
  }
  if ('placement' in t) {
    only('placement', t.placement, ['constraints']);
    for (const c of t.placement.constraints) args.push('--constraint', c);
  }
  for (const l of spec.labels) args.push('--label', `${l.label}=${l.value}`);
  for (const [k, v] of Object.entries(c.env)) args.push('--env', `${k}=${v}`);
  for (const m of c.mounts) {
    only('mounts[]', m, ['type', 'source', 'target']);
    args.push('--mount', `type=${m.type},source=${m.source},target=${m.target}`);
  }
  for (const s of c.secrets) args.push('--secret', `source=${s.secretName},target=${s.fileName}`);
  const h = c.healthcheck;
  args.push('--health-cmd', healthCmd(h.tests), '--health-interval', h.interval, '--health-timeout', h.timeout,
    '--health-retries', String(h.retries), '--health-start-period', h.startPeriod);
  args.push('--stop-grace-period', c.stopGracePeriod);
  only('logDriver', t.logDriver, ['name', 'options']);
  args.push('--log-driver', t.logDriver.name);
  for (const [k, v] of Object.entries(t.logDriver.options)) args.push('--log-opt', `${k}=${v}`);
  const r = t.restartPolicy;
  args.push('--restart-condition', r.condition, '--restart-delay', r.delay, '--restart-window', r.window);
  for (const n of t.networksAdvanceds) args.push('--network', n.name);
  const u = spec.updateConfig;
  args.push('--update-parallelism', String(u.parallelism), '--update-delay', u.delay, '--update-order', u.order,
    '--update-failure-action', u.failureAction, '--update-monitor', u.monitor);
  const rb = spec.rollbackConfig;
  args.push('--rollback-parallelism', String(rb.parallelism), '--rollback-order', rb.order);
  args.push(c.image);
  return args;
}

/** `docker service update` from one release's spec to the next; only what a release changes (image, labels) is translated. */
export function serviceUpdateArgs(from: SwarmServiceSpec, to: SwarmServiceSpec): string[] {
  const strip = (s: SwarmServiceSpec) => JSON.stringify({ ...s, labels: [], taskSpec: { ...s.taskSpec, containerSpec: { ...s.taskSpec.containerSpec, image: '' } } });
  if (strip(from) !== strip(to)) throw new Error('swarm-cli: the specs differ in more than the image and the labels; translate that too');
  const args = ['service', 'update', '--detach', '--image', to.taskSpec.containerSpec.image];
  for (const l of to.labels) args.push('--label-add', `${l.label}=${l.value}`);
  args.push(to.name);
  return args;
}

export function docker(args: string[], input?: string): string {
  return execFileSync('docker', args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 600_000 });
}

/** The engine in swarm mode: `docker swarm init` on loopback when it is not (the CI setup does the same). */
export function ensureSwarm(): void {
  const state = docker(['info', '--format', '{{.Swarm.LocalNodeState}}']).trim();
  if (state === 'active') return;
  docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
}

/** Removes what a test created (missing things are fine). */
export function dockerQuiet(args: string[]): void {
  spawnSync('docker', args, { stdio: 'ignore', timeout: 120_000 });
}
