/**
 * The toolchain itself, before any D8 program runs on it: the Pulumi CLI built from Go modules, its
 * Node.js language host and the command provider (real or D8 stand-in) drive a real `pulumi up` on
 * a local file backend through the Automation API, with the semantics D8 Fleet's program relies on.
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import { LocalWorkspace, PulumiCommand, type Stack } from '@pulumi/pulumi/automation';
import { repoRoot } from '../../core/paths';
import { describeTier, inCi } from '../support/tier';
import { commandProviderLabel, localBackendEnv, pulumiEngineTier, pulumiToolchain } from './support/toolchain';

jest.setTimeout(300_000);

const PROGRAM = `
const pulumi = require("@pulumi/pulumi");
const command = require("@pulumi/command");
const cfg = new pulumi.Config();
const marker = cfg.require("marker");
const local = new command.local.Command("local", {
  create: "echo create rev=$REV >> " + JSON.stringify(marker) + "; echo out-$REV",
  update: "echo update rev=$REV prev=$PULUMI_COMMAND_STDOUT >> " + JSON.stringify(marker) + "; echo out-$REV",
  delete: "echo delete prev=$PULUMI_COMMAND_STDOUT >> " + JSON.stringify(marker),
  environment: { REV: cfg.require("rev") },
  triggers: [cfg.require("trigger")],
});
exports.localStdout = local.stdout;
const sshPort = cfg.getNumber("sshPort");
if (sshPort) {
  const hostKey = cfg.get("hostKey");
  const connection = { host: "127.0.0.1", port: sshPort, user: cfg.require("sshUser"),
    privateKey: cfg.requireSecret("sshKey"), dialErrorLimit: 2, ...(hostKey ? { hostKey } : {}) };
  const copy = new command.remote.CopyToRemote("bundle", {
    connection, source: new pulumi.asset.FileArchive(cfg.require("bundleDir")), remotePath: cfg.require("remoteDir"),
  });
  const remote = new command.remote.Command("remote", {
    connection,
    create: "cat " + cfg.require("remoteDir") + "/bundle/hello.txt; cat; echo to-stderr-$RANDOM-line >&2",
    stdin: "from-stdin",
    delete: "echo remote-delete >> " + JSON.stringify(marker),
  }, { dependsOn: [copy] });
  exports.remoteStdout = remote.stdout;
}
`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function listFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? listFiles(p) : [p];
  });
}

const readLines = (file: string): string[] =>
  fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n') : [];

describeTier(pulumiEngineTier, `pulumi toolchain on a local file backend (${commandProviderLabel()})`, () => {
  let work: string;
  let backendDir: string;
  let stack: Stack;
  let marker: string;
  let sshd: ChildProcess | undefined;

  beforeAll(async () => {
    const toolchain = pulumiToolchain();
    const backend = localBackendEnv();
    backendDir = backend.dir;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-engine-toolchain-'));
    marker = path.join(work, 'marker.log');
    const project = path.join(work, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(
      path.join(project, 'Pulumi.yaml'),
      'name: d8-toolchain-check\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n',
    );
    fs.writeFileSync(path.join(project, 'package.json'), '{ "name": "d8-toolchain-check", "main": "index.js" }\n');
    fs.writeFileSync(path.join(project, 'index.js'), PROGRAM);
    fs.symlinkSync(path.join(repoRoot(), 'node_modules'), path.join(project, 'node_modules'));

    // Runs the Automation API's minimum-version check against the built CLI.
    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(toolchain.binDir) });
    const envVars: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...toolchain.env, ...backend.env })) {
      if (v !== undefined) envVars[k] = v;
    }
    stack = await LocalWorkspace.createOrSelectStack(
      { stackName: 'toolchain', workDir: project },
      { pulumiCommand, envVars },
    );
    await stack.setAllConfig({
      marker: { value: marker },
      rev: { value: '1' },
      trigger: { value: 't1' },
    });
  });

  afterAll(async () => {
    if (stack) {
      await stack.destroy({ onOutput: () => undefined }).catch(() => undefined);
    }
    if (sshd && sshd.exitCode === null) sshd.kill('SIGTERM');
    if (work) fs.rmSync(work, { recursive: true, force: true });
    if (backendDir) fs.rmSync(backendDir, { recursive: true, force: true });
  });

  it('local.Command: create runs once, no change changes nothing, update sees the previous stdout, a trigger replaces', async () => {
    const first = await stack.up({ onOutput: () => undefined });
    expect(first.summary.result).toBe('succeeded');
    expect(first.outputs.localStdout.value).toBe('out-1');
    expect(readLines(marker)).toEqual(['create rev=1']);

    const again = await stack.up({ onOutput: () => undefined });
    expect(again.summary.resourceChanges).toEqual({ same: 2 });
    expect(readLines(marker)).toEqual(['create rev=1']);

    await stack.setConfig('rev', { value: '2' });
    const updated = await stack.up({ onOutput: () => undefined });
    expect(updated.summary.resourceChanges).toMatchObject({ update: 1 });
    expect(updated.outputs.localStdout.value).toBe('out-2');
    expect(readLines(marker)).toEqual(['create rev=1', 'update rev=2 prev=out-1']);

    await stack.setConfig('trigger', { value: 't2' });
    const replaced = await stack.up({ onOutput: () => undefined });
    expect(replaced.summary.resourceChanges).toMatchObject({ replace: 1 });
    // create-before-delete by default: the new command runs, then the old one's delete
    expect(readLines(marker).slice(2)).toEqual(['create rev=2', 'delete prev=out-2']);
  });

  it('remote.CopyToRemote and remote.Command work over SSH, and destroy runs delete commands', async () => {
    const sshdBin = ['/usr/sbin/sshd', '/usr/bin/sshd'].find((p) => fs.existsSync(p));
    if (!sshdBin) {
      if (inCi()) throw new Error('sshd is missing: apt-get install openssh-server');
      process.stderr.write('[skip] remote part: no sshd (apt-get install openssh-server)\n');
      return;
    }
    const dir = path.join(work, 'sshd');
    fs.mkdirSync(dir, { mode: 0o700 });
    for (const key of ['host', 'client']) {
      const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, key)]);
      expect(r.status).toBe(0);
    }
    const port = await freePort();
    fs.writeFileSync(
      path.join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${path.join(dir, 'host')}`,
        `AuthorizedKeysFile ${path.join(dir, 'client.pub')}`,
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'StrictModes no',
        'UsePAM no',
        // The command provider copies files with SFTP (the real one and the stand-in alike).
        'Subsystem sftp internal-sftp',
        `PidFile ${path.join(dir, 'sshd.pid')}`,
      ].join('\n') + '\n',
    );
    fs.mkdirSync('/run/sshd', { recursive: true });
    sshd = spawn(sshdBin, ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let sshdLog = '';
    sshd.stderr?.on('data', (d: Buffer) => (sshdLog += d.toString()));
    await waitForPort(port, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${sshdLog}`);
    });

    const bundleDir = path.join(work, 'bundle');
    fs.mkdirSync(path.join(bundleDir, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(bundleDir, 'hello.txt'), 'hello from the bundle\n');
    fs.writeFileSync(path.join(bundleDir, 'sub', 'run.sh'), '#!/bin/sh\necho run\n', { mode: 0o755 });
    const remoteDir = path.join(work, 'remote');
    await stack.setAllConfig({
      sshPort: { value: String(port) },
      sshUser: { value: os.userInfo().username },
      sshKey: { value: fs.readFileSync(path.join(dir, 'client'), 'utf8'), secret: true },
      bundleDir: { value: bundleDir },
      remoteDir: { value: remoteDir },
    });

    // The host key is required of the server: the right one (authorized_keys form) lets the up in.
    const hostKey = fs.readFileSync(path.join(dir, 'host.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    await stack.setConfig('hostKey', { value: hostKey });
    const logged: string[] = [];
    const up = await stack.up({
      onOutput: () => undefined,
      onEvent: (e) => { if (e.diagnosticEvent?.urn?.endsWith('::remote')) logged.push(e.diagnosticEvent.message); },
    });
    expect(up.summary.result).toBe('succeeded');
    expect(up.outputs.remoteStdout.value).toBe('hello from the bundle\nfrom-stdin');
    // logging (default stdoutAndStderr) streams both of the command's streams to the engine log.
    expect(logged.join('')).toMatch(/hello from the bundle/);
    expect(logged.join('')).toMatch(/to-stderr-\d+-line/);
    // A directory source without a trailing slash lands inside remotePath, like the real provider.
    const runSh = path.join(remoteDir, 'bundle', 'sub', 'run.sh');
    expect(fs.readFileSync(runSh, 'utf8')).toBe('#!/bin/sh\necho run\n');
    // SFTP-style copy: permission bits are not carried over, so scripts must be run with `sh`.
    expect(fs.statSync(runSh).mode & 0o111).toBe(0);
    // The checkpoint on the backend keeps the key encrypted (a boolean check: a failure must not print it).
    const checkpoints = listFiles(backendDir).filter((f) => f.endsWith('.json'));
    expect(checkpoints.length).toBeGreaterThan(0);
    const leaked = checkpoints.filter((f) => fs.readFileSync(f, 'utf8').includes('PRIVATE KEY'));
    expect(leaked).toEqual([]);

    // Another host's key: the provider refuses the server and the resource fails.
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'other')]);
    const otherKey = fs.readFileSync(path.join(dir, 'other.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    await stack.setAllConfig({ hostKey: { value: otherKey }, remoteDir: { value: `${remoteDir}-2` } });
    await expect(stack.up({ onOutput: () => undefined })).rejects.toThrow(/host key mismatch/);
    expect(fs.existsSync(`${remoteDir}-2`)).toBe(false);
    await stack.setAllConfig({ hostKey: { value: hostKey }, remoteDir: { value: remoteDir } });
    expect((await stack.up({ onOutput: () => undefined })).summary.result).toBe('succeeded');

    const destroyed = await stack.destroy({ onOutput: () => undefined });
    expect(destroyed.summary.result).toBe('succeeded');
    expect(readLines(marker)).toEqual(expect.arrayContaining(['remote-delete']));
  });
});
