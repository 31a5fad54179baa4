/**
 * Every bad config stops the program with one ConfigError naming the key (and the slave), before a
 * single resource is declared.
 */
import fs from 'fs';
import path from 'path';
import type { BundleInfo } from '../../agent/bundle/build';
import { ConfigError } from '../../core/stack-config';
import { bundleFor, randomCommit, tempDir } from './support/fixtures';
import { KEYS, resolve, threeSlaves, writeKeyFile } from './support/fleet-fixture';
import { mockEngine } from './support/mock-engine';

type FleetModule = typeof import('../../infra/fleet');
let fleetMod: FleetModule;
let root: string;
let bundle: BundleInfo;

beforeAll(async () => {
  root = tempDir('d8-pulumi-errors-');
  bundle = await bundleFor(root, randomCommit());
  await mockEngine('errors');
  fleetMod = require('../../infra/fleet') as FleetModule;
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

type Raw = ReturnType<typeof threeSlaves> & Record<string, unknown>;
type Slave = Record<string, unknown>;
const slave = (raw: Raw, i: number) => (raw.slaves as Slave[])[i];

interface Case {
  what: string;
  edit: (raw: Raw) => void;
  message: RegExp;
  key: string;
}

const CASES: Case[] = [
  {
    what: 'an unknown strategy',
    edit: (r) => { slave(r, 1).strategies = ['venv', 'podman']; },
    message: /d8:slaves\[1\] \(vps\)\.strategies\[1\] .*'docker' \| 'venv' \| 'native'.*'podman'/,
    key: 'd8:slaves[1] (vps).strategies[1]',
  },
  {
    what: 'a strategy given twice',
    edit: (r) => { slave(r, 0).strategies = ['docker', 'docker']; },
    message: /d8:slaves\[0\] \(pc\)\.strategies must not repeat a strategy/,
    key: 'd8:slaves[0] (pc).strategies',
  },
  {
    what: 'duplicate slave names',
    edit: (r) => { slave(r, 2).name = 'pc'; },
    message: /d8:slaves\[2\]\.name "pc" is used twice \(also slaves\[0\]\)/,
    key: 'd8:slaves[2].name',
  },
  {
    what: 'no SSH key material for a remote slave',
    edit: (r) => { delete r.sshPrivateKey; },
    message: /d8:slaves\[0\] \(pc\) is a remote host but no SSH key is configured/,
    key: 'd8:sshKeyPath',
  },
  {
    what: 'a key path that does not exist',
    edit: (r) => { delete r.sshPrivateKey; r.sshKeyPath = '/nonexistent/d8/id_ed25519'; },
    message: /d8:sshKeyPath \/nonexistent\/d8\/id_ed25519 cannot be read \(ENOENT\)/,
    key: 'd8:sshKeyPath',
  },
  {
    what: 'a key path naming a public key',
    edit: (r) => { delete r.sshPrivateKey; r.sshKeyPath = writeKeyFile(fs.mkdtempSync(path.join(root, 'pub-')), 'ssh-ed25519 AAAAC3Nza me@pc\n'); },
    message: /d8:sshKeyPath .* is not a private key .*\.pub/,
    key: 'd8:sshKeyPath',
  },
  {
    what: 'an agent port out of range',
    edit: (r) => { slave(r, 1).agentPort = 70000; },
    message: /d8:slaves\[1\] \(vps\)\.agentPort must be between 1 and 65535/,
    key: 'd8:slaves[1] (vps).agentPort',
  },
  {
    what: 'an SSH port of zero',
    edit: (r) => { slave(r, 0).sshPort = 0; },
    message: /d8:slaves\[0\] \(pc\)\.sshPort must be between 1 and 65535/,
    key: 'd8:slaves[0] (pc).sshPort',
  },
  {
    what: 'a port given as text',
    edit: (r) => { slave(r, 0).sshPort = '22'; },
    message: /d8:slaves\[0\] \(pc\)\.sshPort must be a port number/,
    key: 'd8:slaves[0] (pc).sshPort',
  },
  {
    what: 'two agents on one address and port',
    edit: (r) => { slave(r, 1).host = '127.0.0.2'; slave(r, 1).agentPort = 7600; },
    message: /d8:slaves \(vps\)\.agentPort 7600 on 127\.0\.0\.2 is already used by pc/,
    key: 'd8:slaves.agentPort',
  },
  {
    what: 'a host key that is not a key',
    edit: (r) => { slave(r, 0).hostKey = 'fingerprint SHA256:abc'; },
    message: /d8:slaves\[0\] \(pc\)\.hostKey is not a public host key/,
    key: 'd8:slaves[0] (pc).hostKey',
  },
  {
    what: 'a remote slave without a user',
    edit: (r) => { delete slave(r, 1).user; },
    message: /d8:slaves\[1\] \(vps\)\.user is required for a remote host/,
    key: 'd8:slaves[1].user',
  },
  {
    what: 'an unknown slave key',
    edit: (r) => { slave(r, 0).hostname = 'pc.lan'; },
    message: /d8:slaves\[0\] \(pc\)\.hostname is not a known key/,
    key: 'd8:slaves[0] (pc).hostname',
  },
  {
    what: 'a weak agent token',
    edit: (r) => { r.agentToken = 'changeme'; },
    message: /agent token unusable .*d8:agentToken/,
    key: 'd8:agentToken',
  },
  {
    what: 'a swarm node without swarm mode',
    edit: (r) => { slave(r, 1).swarmNode = 'vps'; },
    message: /d8:slaves\[1\]\.swarmNode is only used in swarm mode: set d8:swarm too, or remove it/,
    key: 'd8:slaves[1].swarmNode',
  },
  {
    what: 'a swarm manager that is not an ssh URL',
    edit: (r) => { r.swarm = 'tcp://manager:2375'; },
    message: /d8:swarm must look like ssh:\/\/user@host/,
    key: 'd8:swarm',
  },
];

describe('a bad config', () => {
  it.each(CASES)('is refused with its key named: $what', async ({ edit, message, key }) => {
    const session = await mockEngine('errors');
    const raw = threeSlaves() as Raw;
    edit(raw);
    let error: unknown;
    try {
      fleetMod.createFleet(resolve('errors', raw), bundle, { resourceOptions: session.resourceOptions });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(message);
    expect((error as ConfigError).message).toMatch(/^stack errors: /);
    expect((error as ConfigError).key).toBe(key);
    // Validation happens before anything is declared: a half-declared fleet would delete the rest.
    expect(session.registeredNames()).toEqual([]);
  });

  it('never echoes the private key or the token in an error', async () => {
    await mockEngine('errors');
    const raw = threeSlaves() as Raw;
    slave(raw, 0).hostKey = KEYS.privatePem;
    expect(() => fleetMod.createFleet(resolve('errors', raw), bundle)).toThrow(/hostKey must be exactly one public host key line/);
    try {
      fleetMod.createFleet(resolve('errors', raw), bundle);
    } catch (err) {
      expect((err as Error).message).not.toContain(KEYS.privatePem.split('\n')[1]);
    }
  });
});
