/** Swarm mode's pure parts: the convergence verdict (per slave and for the fleet), the nodes' platform, each slave's node, the service names, the manager address, release-only version files, the agent's certificate in `docker service logs`. */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { readVersionInfo, releaseOnlyVersionInfo, VersionFileError } from '../../core/version-info';
import { dockerPlatform, resolveSwarmNodes, swarmPlatform, SwarmPlatformError, type SwarmNode } from '../../infra/swarm-docker';
import { parseSwarmManager, swarmServiceName, swarmServiceSpec } from '../../infra/swarm-spec';
import { serviceCreateArgs } from '../system/support/swarm-cli';
import { ConfigError } from '../../core/stack-config';
import { judgeConvergence, judgeFleetConvergence, type SwarmSnapshot } from '../../master/deploy/swarm/service-state';
import { SwarmNeedsPulumi } from '../../master/deploy/swarm/needs-pulumi';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

/** A snapshot shaped as the docker CLI prints it (field names as in `docker service inspect` / `docker inspect <task>`). */
function snapshot(o: { commit?: string; image?: string; state?: string; message?: string; taskImage?: string; taskState?: string; agent?: string | null; failures?: string[] } = {}): SwarmSnapshot {
  const image = o.image ?? 'd8-agent:aaaa-1111';
  return {
    service: {
      ID: 'svc1',
      Spec: { Name: 'd8-agent-pi', Labels: { 'd8.commit': o.commit ?? A, 'd8.bundle': 'f'.repeat(64) }, TaskTemplate: { ContainerSpec: { Image: image } } },
      UpdateStatus: o.state ? { State: o.state, Message: o.message ?? 'update completed' } : null,
    },
    tasks: [{ ID: 't1', NodeID: 'n1', DesiredState: 'running', Status: { State: o.taskState ?? 'running' }, Spec: { ContainerSpec: { Image: o.taskImage ?? image } } }],
    nodes: [{ ID: 'n1', Hostname: 'pi', Status: 'Ready', Availability: 'Active' }, { ID: 'n2', Hostname: 'gone', Status: 'Down', Availability: 'Active' }],
    failures: (o.failures ?? []).map((e) => ({ Node: 'pi', Error: `"${e}"`, CurrentState: 'Failed 3 seconds ago', DesiredState: 'Shutdown' })),
    agent: { slave: 'pi', commit: o.agent === undefined ? A : o.agent },
  };
}

describe('judgeConvergence', () => {
  it('converges when the slave\'s task runs the spec\'s image and its agent reports the commit', () => {
    expect(judgeConvergence(snapshot({ state: 'completed' }), A)).toEqual({ kind: 'converged', why: 'pi: d8-agent-pi runs aaaaaaa on node pi' });
    expect(judgeConvergence(snapshot(), A).kind).toBe('converged');
  });

  it('waits while the swarm updates, the task starts, the node runs the previous image or the agent is not there yet', () => {
    expect(judgeConvergence(snapshot({ state: 'updating' }), A)).toEqual({ kind: 'waiting', why: 'the swarm is still updating service d8-agent-pi' });
    expect(judgeConvergence(snapshot({ taskState: 'starting' }), A).why).toBe('the task of d8-agent-pi on node pi is starting');
    expect(judgeConvergence(snapshot({ taskImage: 'd8-agent:old' }), A).why).toBe('node pi still runs the previous image of d8-agent-pi');
    expect(judgeConvergence(snapshot({ agent: null }), A).why).toBe("pi's agent does not answer, not aaaaaaa");
    expect(judgeConvergence(snapshot({ agent: B }), A).why).toBe("pi's agent reports bbbbbbb, not aaaaaaa");
    expect(judgeConvergence({ ...snapshot(), tasks: [] }, A).why).toBe('service d8-agent-pi has no task yet');
    const unplaced = snapshot();
    unplaced.tasks = [{ ...unplaced.tasks[0], NodeID: undefined, Status: { State: 'pending', Err: 'no suitable node (scheduling constraints not satisfied on 1 node)' } }];
    expect(judgeConvergence(unplaced, A).why).toBe('the task of d8-agent-pi is pending (no suitable node (scheduling constraints not satisfied on 1 node))');
  });

  it('fails naming the rollback when the swarm rolled this release back', () => {
    const v = judgeConvergence(snapshot({ commit: A, state: 'rollback_completed', message: 'rollback completed', failures: ['task: non-zero exit (3)'] }), B);
    expect(v).toEqual({
      kind: 'rolled_back', state: 'rollback_completed',
      why: 'the swarm rolled service d8-agent-pi back (rollback_completed: rollback completed): release bbbbbbb is not running; failed tasks: pi: task: non-zero exit (3)',
    });
    for (const state of ['rollback_started', 'rollback_paused']) expect(judgeConvergence(snapshot({ state }), B).kind).toBe('rolled_back');
  });

  it('takes a rollback state under a spec that declares this release for an earlier update\'s', () => {
    expect(judgeConvergence(snapshot({ state: 'rollback_completed' }), A).kind).toBe('converged');
    expect(judgeConvergence(snapshot({ state: 'rollback_completed', taskImage: 'x:old' }), A).kind).toBe('waiting');
  });

  it('fails on a paused update and on a spec declaring another release', () => {
    expect(judgeConvergence(snapshot({ state: 'paused', message: 'update paused due to failure' }), A).kind).toBe('paused');
    expect(judgeConvergence(snapshot({ commit: B }), A)).toEqual({
      kind: 'wrong_release', why: 'service d8-agent-pi is declared for release bbbbbbb, not aaaaaaa (changed outside Pulumi? run `pulumi refresh`, then deploy again)',
    });
  });
});

describe('judgeFleetConvergence', () => {
  const ok = { kind: 'converged' as const, why: 'x' };
  it('converges only when every slave\'s service has; else the rollback of any one of them, naming it; else every wait', () => {
    expect(judgeFleetConvergence([ok, ok], A)).toEqual({ kind: 'converged', why: '2 slave service(s) run aaaaaaa; every agent reports it' });
    const back = judgeConvergence(snapshot({ state: 'rollback_completed' }), B);
    expect(judgeFleetConvergence([ok, { kind: 'waiting', why: 'w' }, back], B)).toBe(back);
    expect(judgeFleetConvergence([ok, back], B).why).toContain('rolled service d8-agent-pi back');
    expect(judgeFleetConvergence([{ kind: 'waiting', why: 'a waits' }, ok, { kind: 'waiting', why: 'b waits' }], A)).toEqual({ kind: 'waiting', why: 'a waits; b waits' });
  });
});

describe('slaves on swarm nodes', () => {
  const nodes: SwarmNode[] = [
    { id: 'aaaaaaaaaaaa1111', hostname: 'pc', addr: '192.168.1.10', os: 'linux', architecture: 'x86_64' },
    { id: 'bbbbbbbbbbbb2222', hostname: 'vps', addr: '10.8.0.1', os: 'linux', architecture: 'x86_64' },
    { id: 'cccccccccccc3333', hostname: 'vps', addr: '10.8.0.2', os: 'linux', architecture: 'x86_64' },
  ];
  const slave = (name: string, host: string, extra: { swarmNode?: string; agentPort?: number; agentHost?: string } = {}) =>
    ({ name, host, agentHost: extra.agentHost ?? host, agentPort: extra.agentPort ?? 7600, swarmNode: extra.swarmNode });

  it('finds each slave\'s node by its host (hostname or address) or its swarmNode (hostname, address or ID)', () => {
    expect(resolveSwarmNodes([
      slave('pc', 'pc'), slave('by-addr', '10.8.0.1'), slave('by-agent-host', 'x.lan', { agentHost: '10.8.0.2' }),
      slave('named', 'elsewhere', { swarmNode: 'pc', agentPort: 7601 }), slave('by-id', 'y', { swarmNode: 'bbbbbbbbbbbb', agentPort: 7602 }),
      slave('by-short-name', 'pc.lan', { agentPort: 7603 }),
    ], nodes)).toEqual({
      pc: 'aaaaaaaaaaaa1111', 'by-addr': 'bbbbbbbbbbbb2222', 'by-agent-host': 'cccccccccccc3333', named: 'aaaaaaaaaaaa1111', 'by-id': 'bbbbbbbbbbbb2222', 'by-short-name': 'aaaaaaaaaaaa1111',
    });
    // A swarmNode is taken as written; an address is never shortened.
    expect(() => resolveSwarmNodes([slave('s', 'x', { swarmNode: 'pc.lan' })], nodes)).toThrow(ConfigError);
    expect(() => resolveSwarmNodes([slave('ip', '10.0.0.9')], [{ ...nodes[0], hostname: '10' }])).toThrow(ConfigError);
  });

  it('refuses a slave on no node, on two, or on one node and port with another slave, naming the key and the fix', () => {
    const fail = (slaves: ReturnType<typeof slave>[]) => { try { resolveSwarmNodes(slaves, nodes); return null; } catch (e) { return e as ConfigError; } };
    const none = fail([slave('laptop', 'laptop.lan')])!;
    expect(none).toBeInstanceOf(ConfigError);
    expect(none.key).toBe('d8:slaves[0].swarmNode');
    expect(none.message).toBe('d8:slaves[0] (laptop): no swarm node has the hostname or address "laptop.lan" (nodes: pc (192.168.1.10, id aaaaaaaaaaaa), ' +
      'vps (10.8.0.1, id bbbbbbbbbbbb), vps (10.8.0.2, id cccccccccccc)): set d8:slaves[0].swarmNode to the hostname of the node its agent runs on, ' +
      'or add the host to the swarm (`docker swarm join`)');
    expect(fail([slave('v', 'vps')])!.message).toMatch(/^d8:slaves\[0\] \(v\) matches 2 swarm nodes \(vps \(10\.8\.0\.1.*\): set d8:slaves\[0\]\.swarmNode to one node's ID$/);
    expect(fail([slave('pc', 'pc'), slave('pc2', '192.168.1.10')])!.message).toBe(
      'd8:slaves[1] (pc2) runs on swarm node pc like pc, on the same agentPort 7600: give one of them another d8:slaves[].agentPort (one port is bound once per node)');
    expect(fail([slave('pc', 'pc', { swarmNode: 'nope' })])!.message).toMatch(/^d8:slaves\[0\]\.swarmNode \(pc\) "nope" is no node of the swarm \(nodes: pc/);
  });

  it('names each slave\'s service after it, within docker\'s 63 characters', () => {
    expect(swarmServiceName('pi')).toBe('d8-agent-pi');
    expect(swarmServiceName('x'.repeat(54))).toHaveLength(63);
    expect(() => swarmServiceName('x'.repeat(55))).toThrow(/too long for swarm mode: its service d8-agent-x+ must have at most 63 characters \(use a name of at most 54\)/);
  });
});

describe('swarm platform', () => {
  it('maps the engine\'s architectures and refuses a mixed swarm naming the nodes', () => {
    expect(swarmPlatform([{ hostname: 'a', os: 'linux', architecture: 'x86_64' }, { hostname: 'b', os: 'linux', architecture: 'x86_64' }])).toBe('linux/amd64');
    expect(dockerPlatform({ hostname: 'pi', os: 'linux', architecture: 'aarch64' })).toBe('linux/arm64');
    expect(dockerPlatform({ hostname: 'pi3', os: 'linux', architecture: 'armv7l' })).toBe('linux/arm/v7');
    expect(() => swarmPlatform([{ hostname: 'pc', os: 'linux', architecture: 'x86_64' }, { hostname: 'pi', os: 'linux', architecture: 'aarch64' }]))
      .toThrow(new SwarmPlatformError('the swarm mixes platforms (linux/amd64: pc; linux/arm64: pi); swarm mode runs one image on every node: ' +
        'use nodes of one architecture, or deploy these hosts as plain slaves (no d8:swarm)'));
    expect(() => dockerPlatform({ hostname: 'w', os: 'windows', architecture: 'x86_64' })).toThrow('swarm node w is windows/x86_64');
    expect(() => swarmPlatform([])).toThrow('the swarm has no nodes');
  });
});

describe('parseSwarmManager', () => {
  it('reads user, host and port', () => {
    expect(parseSwarmManager('ssh://d8@192.168.1.20')).toEqual({ user: 'd8', host: '192.168.1.20', port: 22, destination: 'd8@192.168.1.20' });
    expect(parseSwarmManager('ssh://d8@manager.lan:2222')).toEqual({ user: 'd8', host: 'manager.lan', port: 2222, destination: 'd8@manager.lan' });
    expect(parseSwarmManager('ssh://d8@[fd00::1]:2222').host).toBe('fd00::1');
    expect(() => parseSwarmManager('ssh://d8@host:99999')).toThrow(ConfigError);
    expect(() => parseSwarmManager('d8@host')).toThrow('must look like ssh://user@host or ssh://user@host:2222');
  });
});

describe('release-only version files', () => {
  it('an agent fills deployed_at with its own start; everyone else refuses the file', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'd8-release-')), 'version_info.json');
    const info = { branch: 'main', commit: A, version: '1.0.0', deployed_at: '2026-01-01T00:00:00.000Z', dirty: false };
    fs.writeFileSync(file, JSON.stringify(releaseOnlyVersionInfo(info)));
    expect(fs.readFileSync(file, 'utf8')).not.toContain('deployed_at');
    expect(readVersionInfo(file, { missingDeployedAt: () => '2026-02-02T02:02:02.000Z' })).toEqual({ ...info, deployed_at: '2026-02-02T02:02:02.000Z' });
    expect(() => readVersionInfo(file)).toThrow(VersionFileError);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });
});

describe('swarm mode without Pulumi', () => {
  it('fails every deploy as a config problem naming the fix', async () => {
    const r = await new SwarmNeedsPulumi().deploy({ name: 'pi' } as Parameters<SwarmNeedsPulumi['deploy']>[0], { reason: 'behind' });
    expect(r).toMatchObject({ slave: 'pi', ok: false, status: 'failed', errorKind: 'config' });
    expect(r.error).toContain('swarm mode (d8:swarm) deploys only through Pulumi: install the Pulumi CLI');
  });
});

describe('pulumi deployer in swarm mode', () => {
  it('deploys asked for while the fleet\'s one update runs join it (one run, one build log, a result per slave)', async () => {
    const { PulumiDeployer } = await import('../../master/deploy/pulumi/pulumi-deployer');
    const { resolveFleetConfig } = await import('../../core/stack-config');
    const { createLogger } = await import('../../core/logger');
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-swarm-deployer-'));
    const saved = { D8_HOME: process.env.D8_HOME, PATH: process.env.PATH, HOME: process.env.HOME };
    // No Pulumi CLI anywhere: every run fails fast, and writes its build log.
    Object.assign(process.env, { D8_HOME: home, PATH: '/nonexistent', HOME: home });
    try {
      const config = resolveFleetConfig({
        swarm: 'ssh://d8@manager.lan',
        slaves: [{ name: 'a', host: 'a.lan', user: 'd8' }, { name: 'b', host: 'b.lan', user: 'd8' }, { name: 'c', host: 'c.lan', user: 'd8' }],
      }, { stack: 'swarm', env: {} });
      const d = new PulumiDeployer({ stack: 'swarm', repoDir: home, config, logger: createLogger({ name: 'test', level: 'silent' }) });
      const results = await Promise.all(config.slaves.map((s) => d.deploy(s, { reason: 'behind' })));
      expect(results.map((r) => r.slave)).toEqual(['a', 'b', 'c']);
      for (const r of results) expect(r).toMatchObject({ ok: false, errorKind: 'config', error: expect.stringContaining('no pulumi CLI on PATH') });
      expect(fs.readdirSync(path.join(home, 'build_logs'))).toHaveLength(1);
      // Once it has ended, the next deploy runs again.
      await d.deploy(config.slaves[0], { reason: 'manual' });
      expect(fs.readdirSync(path.join(home, 'build_logs'))).toHaveLength(2);
    } finally {
      Object.assign(process.env, saved);
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('the agent certificate from `docker service logs` (the swarm slave\'s pin)', () => {
  const task = 'kf6i70jha0spmohgfo4y4gpq6';
  const old = 'p2x9c7mqa1b3n4v5c6x7z8l9k';
  const fp = (byte: string): string => Array(32).fill(byte).join(':');
  /** A line as the CLI prints it (not --raw): `<service>.<slot>.<task id>@<node>    | <line>`. */
  const line = (t: string, text: string): string => `d8-agent-pi.1.${t}@pi    | ${text}`;
  /** The agent's start-up line (agent/main.ts), as pino writes it. */
  const listening = (fingerprint: string | null, extra: Record<string, unknown> = {}): string => JSON.stringify({
    level: 30, time: 1764525000000, pid: 1, hostname: 'pi', name: 'd8-agent', port: 7600, host: '0.0.0.0', commit: A, install_strategy: 'docker',
    scheme: fingerprint ? 'https' : 'http', tls_fingerprint: fingerprint, msg: 'listening', ...extra,
  });

  it('takes the running task\'s newest start-up line, skipping other tasks\' lines and lines that are not the agent\'s', async () => {
    const { certificateFromServiceLogs } = await import('../../master/deploy/swarm/agent-fingerprint');
    const logs = [
      line(old, listening(fp('AA'))),
      line(task, 'npm WARN something unrelated'),
      line(task, JSON.stringify({ level: 30, name: 'd8-agent', msg: 'made a new key pair and self-signed certificate', fingerprint: fp('EE') })),
      line(task, listening(fp('BB'))),
      // Another program's JSON that looks alike, and a line with the agent's shape in another task.
      line(task, JSON.stringify({ name: 'other', msg: 'listening', tls_fingerprint: fp('CC') })),
      line(old, listening(fp('DD'))),
      line(task, '{"name":"d8-agent","msg":"listening","tls_fingerprint":"not-a-fingerprint"}'),
      line(task, '{not json'),
      listening(fp('FF')), // no task prefix (--raw): whose it is cannot be told
    ].join('\n');
    expect(certificateFromServiceLogs(logs, task)).toEqual({ scheme: 'https', fingerprint: fp('BB') });
    expect(certificateFromServiceLogs(logs, old)).toEqual({ scheme: 'https', fingerprint: fp('DD') });
    // The newest line wins: an agent restarted in its task logs again.
    expect(certificateFromServiceLogs(`${logs}\n${line(task, listening(fp('11')))}`, task)).toEqual({ scheme: 'https', fingerprint: fp('11') });
    // A truncated task ID (the CLI without --no-trunc) still names its task.
    expect(certificateFromServiceLogs(line(task.slice(0, 12), listening(fp('22'))), task)).toEqual({ scheme: 'https', fingerprint: fp('22') });
  });

  it('says plain HTTP for an agent before TLS, and none when the task has not logged its start yet', async () => {
    const { certificateFromServiceLogs } = await import('../../master/deploy/swarm/agent-fingerprint');
    expect(certificateFromServiceLogs(line(task, listening(null)), task)).toEqual({ scheme: 'http', fingerprint: null });
    expect(certificateFromServiceLogs('', task)).toEqual({ scheme: 'none' });
    expect(certificateFromServiceLogs([line(task, 'starting'), line(old, listening(fp('AA')))].join('\n'), task)).toEqual({ scheme: 'none' });
    // An older agent's start-up line without the field at all says nothing about its scheme.
    const { tls_fingerprint: _f, scheme: _s, ...bare } = JSON.parse(listening(fp('AA'))) as Record<string, unknown>;
    expect(certificateFromServiceLogs(line(task, JSON.stringify(bare)), task)).toEqual({ scheme: 'none' });
  });

  it('reads the running task\'s logs on the manager, and a log driver that keeps none is an error naming the fix', async () => {
    const { readTaskCertificate, runningTaskCertificate } = await import('../../master/deploy/swarm/agent-fingerprint');
    const calls: string[][] = [];
    const docker = async (args: string[]) => {
      calls.push(args);
      if (args[1] === 'ps') return { code: 0, stdout: `${task}\n`, stderr: '' };
      return { code: 0, stdout: '', stderr: `${line(task, listening(fp('AB')))}\n` };
    };
    await expect(runningTaskCertificate(docker, 'd8-agent-pi')).resolves.toEqual({ scheme: 'https', fingerprint: fp('AB') });
    expect(calls).toEqual([['service', 'ps', 'd8-agent-pi', '-q', '--no-trunc', '--filter', 'desired-state=running'], ['service', 'logs', '--no-trunc', task]]);
    // At master start (adopt-pins.ts): the certificates the running agents logged; a slave with no running task or a plain-HTTP agent has none.
    const { swarmRecordedPins } = await import('../../master/deploy/pulumi/swarm-settle');
    const { resolveFleetConfig } = await import('../../core/stack-config');
    const config = resolveFleetConfig({
      swarm: 'ssh://d8@manager.lan', slaves: ['a', 'b', 'c'].map((name) => ({ name, host: `${name}.lan`, user: 'd8' })),
    }, { stack: 'swarm', env: {} });
    const tasks: Record<string, string> = { 'd8-agent-a': task, 'd8-agent-c': old };
    const fleet = async (args: string[]) => {
      if (args[1] === 'ps') return { code: 0, stdout: tasks[args[2]] ?? '', stderr: '' };
      return { code: 0, stdout: '', stderr: [line(task, listening(fp('0A'))), line(old, listening(null))].join('\n') };
    };
    await expect(swarmRecordedPins(config, ['a', 'b', 'c'], { docker: fleet })).resolves.toEqual({ a: fp('0A') });
    const none = async () => ({ code: 1, stdout: '', stderr: 'Error response from daemon: configured logging driver does not support reading' });
    await expect(readTaskCertificate(none, task)).rejects.toThrow(/does not support reading.*json-file, local or journald driver/);
  });

  /**
   * A `docker` on PATH that prints a task's log as `docker service logs` does, then goes on for ever
   * (months of request lines): the read must stop, not buffer it all until the timeout.
   */
  function endlessLogDocker(firstLines: string[]): { bin: string; pidFile: string } {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-docker-shim-'));
    const pidFile = path.join(bin, 'pid');
    const head = firstLines.map((l) => `printf '%s\\n' '${l.replace(/'/g, "'\\''")}' >&2`).join('\n');
    fs.writeFileSync(path.join(bin, 'docker'), `#!/bin/sh\necho $$ > ${pidFile}\n${head}\nwhile :; do printf '%s\\n' '${line(task, '{"level":30,"name":"d8-agent","msg":"request"}')}' >&2; done\n`, { mode: 0o755 });
    return { bin, pidFile };
  }

  it('stops reading a task\'s logs at the agent\'s start-up line, or after a bounded amount without one', async () => {
    const { readTaskCertificate, TASK_LOG_READ_LIMIT } = await import('../../master/deploy/swarm/agent-fingerprint');
    const { localDocker } = await import('../../infra/swarm-docker');
    const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };
    for (const [first, expected] of [
      [[line(task, 'starting'), line(task, listening(fp('AC')))], { scheme: 'https', fingerprint: fp('AC') }],
      [[line(task, 'starting')], { scheme: 'none' }],
    ] as const) {
      const shim = endlessLogDocker([...first]);
      try {
        // The runner's own timeout (60 s) is longer than this test's: only an early stop passes.
        await expect(readTaskCertificate(localDocker(60_000, path.join(shim.bin, 'docker')), task)).resolves.toEqual(expected);
        const pid = Number(fs.readFileSync(shim.pidFile, 'utf8'));
        await new Promise((r) => setTimeout(r, 200));
        expect(alive(pid)).toBe(false);
      } finally {
        fs.rmSync(shim.bin, { recursive: true, force: true });
      }
    }
    expect(TASK_LOG_READ_LIMIT).toBeLessThanOrEqual(8 * 1024 * 1024);
  }, 30_000);
});

describe('one look at a swarm fleet', () => {
  it('asks the manager for its node list once, whatever the number of slaves', async () => {
    const { convergedNow } = await import('../../master/deploy/swarm/convergence');
    const { resolveFleetConfig } = await import('../../core/stack-config');
    const config = resolveFleetConfig({
      swarm: 'ssh://d8@manager.lan', slaves: ['a', 'b', 'c', 'd'].map((name) => ({ name, host: `${name}.lan`, user: 'd8' })),
    }, { stack: 'swarm', env: {} });
    const calls: string[][] = [];
    const image = 'd8-agent:aaaa-1111';
    const docker = async (args: string[]) => {
      calls.push(args);
      const out = (stdout: string) => ({ code: 0, stdout, stderr: '' });
      if (args[0] === 'service' && args[1] === 'inspect') {
        return out(JSON.stringify({ ID: 's', Spec: { Name: args[2], Labels: { 'd8.commit': A, 'd8.bundle': 'f'.repeat(64) }, TaskTemplate: { ContainerSpec: { Image: image } } }, UpdateStatus: null }));
      }
      if (args[0] === 'service' && args[1] === 'ps') return out(args.includes('-q') ? `t-${args[2]}\n` : '');
      if (args[0] === 'inspect') return out(`${JSON.stringify({ ID: args[3], NodeID: 'n1', DesiredState: 'running', Status: { State: 'running' }, Spec: { ContainerSpec: { Image: image } } })}\n`);
      if (args[0] === 'node') return out(`${JSON.stringify({ ID: 'n1', Hostname: 'pi', Status: 'Ready', Availability: 'Active' })}\n`);
      if (args[0] === 'service' && args[1] === 'logs') return { code: 0, stdout: '', stderr: `d8-agent-x.1.${args[3]}@pi    | {"name":"d8-agent","msg":"listening","tls_fingerprint":null}\n` };
      throw new Error(`unexpected docker ${args.join(' ')}`);
    };
    const verdicts = await convergedNow({ docker, commit: A, slaves: config.slaves, health: async (s) => ({ slave: s.name, commit: A }) });
    expect(verdicts.map((v) => v.verdict.kind)).toEqual(['converged', 'converged', 'converged', 'converged']);
    expect(calls.filter((c) => c[0] === 'node')).toEqual([['node', 'ls', '--format', '{{json .}}']]);
  });
});

describe('a slave\'s service spec', () => {
  it('caps its task\'s logs (json-file, 2 x 5 MB), and the CLI translation the system tier runs passes that on', () => {
    const spec = swarmServiceSpec({ slave: 'n1', node: 'node-id', image: 'img:1', secret: { id: 's-id', name: 's-name' }, agentPort: 18080, commit: 'c'.repeat(40), bundleHash: 'b'.repeat(64) });
    expect(spec.taskSpec.logDriver).toEqual({ name: 'json-file', options: { 'max-size': '5m', 'max-file': '2' } });
    const args = serviceCreateArgs(spec);
    const at = args.indexOf('--log-driver');
    expect(args.slice(at, at + 6)).toEqual(['--log-driver', 'json-file', '--log-opt', 'max-size=5m', '--log-opt', 'max-file=2']);
  });
});
