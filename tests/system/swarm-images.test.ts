/**
 * The swarm image clean-up (infra/swarm-images.ts) against the real engine's image list: releases
 * built as `sw-img-…` images from the local base, the script run as the program runs it on the
 * manager (`sh -s -- <args>` with the script on stdin, over real ssh to the d8-docker test host, a
 * docker-group user of this engine), and what remains read back from the engine.
 */
import { execFileSync, spawnSync } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { shQuote } from '../../core/shell-quote';
import { IMAGE_CLEANUP_SCRIPT, imageCleanupArgs, imageCleanupCommand } from '../../infra/swarm-images';
import { parseSwarmManager } from '../../infra/swarm-spec';
import { describeTier } from '../support/tier';
import { docker, dockerQuiet } from './support/swarm-cli';
import { BASE_IMAGE, systemTier, tempDir, upTestHosts } from './support/hosts';

const REPO = `sw-img-${crypto.randomBytes(3).toString('hex')}`;
const OTHER = `${REPO}-other`;

jest.setTimeout(300_000);

describeTier(systemTier, 'swarm image clean-up against the real engine', () => {
  let root: string;
  let run: (args: string[]) => { code: number; stdout: string; stderr: string };
  const container = `${REPO}-user`;

  const tags = (repo: string): string[] =>
    docker(['image', 'ls', repo, '--format', '{{.Tag}}']).split('\n').filter(Boolean).sort();

  beforeAll(() => {
    root = tempDir('d8-swarm-images-');
    const th = upTestHosts();
    const h = th.hosts.docker;
    // The command the program runs (imageCleanupCommand), with a known_hosts that has the test host.
    const knownHosts = path.join(root, 'known_hosts');
    fs.writeFileSync(knownHosts, `[${h.host}]:${h.port} ${h.hostKey}\n`);
    const manager = parseSwarmManager(`ssh://${h.user}@${h.host}:${h.port}`);
    run = (args) => {
      const r = spawnSync('sh', ['-c', imageCleanupCommand(manager, th.key, args, ['-o', `UserKnownHostsFile=${knownHosts}`])], {
        input: IMAGE_CLEANUP_SCRIPT, encoding: 'utf8', timeout: 120_000,
      });
      return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
    };
    // Five releases, oldest first, a second apart (the engine's creation times have second resolution).
    const ctx = path.join(root, 'ctx');
    fs.mkdirSync(ctx);
    for (const [repo, n] of [[REPO, 1], [REPO, 2], [REPO, 3], [REPO, 4], [REPO, 5], [OTHER, 1]] as const) {
      fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${BASE_IMAGE}\nLABEL d8.test.release=${repo}-r${n}\n`);
      execFileSync('docker', ['build', '-q', '-t', `${repo}:r${n}`, ctx], { stdio: 'ignore' });
      execFileSync('sleep', ['1.1']);
    }
    // r2 is used by a (stopped) container, as an old swarm task's container keeps its image.
    docker(['create', '--name', container, `${REPO}:r2`, 'true']);
  });

  afterAll(() => {
    dockerQuiet(['rm', '-f', container]);
    for (const repo of [REPO, OTHER]) {
      for (const t of ['r1', 'r2', 'r3', 'r4', 'r5']) dockerQuiet(['image', 'rm', `${repo}:${t}`]);
    }
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('prune keeps the newest N releases, leaves an image in use, removes the rest, and touches no other repository', () => {
    expect(tags(REPO)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5']);
    const r = run(imageCleanupArgs('prune', REPO, 2));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`kept ${REPO}:r5`);
    expect(r.stdout).toContain(`kept ${REPO}:r4`);
    expect(r.stdout).toContain(`in-use ${REPO}:r2`);
    expect(r.stdout).toContain(`removed ${REPO}:r3`);
    expect(r.stdout).toContain(`removed ${REPO}:r1`);
    expect(tags(REPO)).toEqual(['r2', 'r4', 'r5']);
    expect(tags(OTHER)).toEqual(['r1']);
    // Run again (the next release's update): nothing more to do, nothing wrongly removed.
    const again = run(imageCleanupArgs('prune', REPO, 2));
    expect(again.code).toBe(0);
    expect(tags(REPO)).toEqual(['r2', 'r4', 'r5']);
  });

  it('remove-all (destroy) fails naming an image still in use, then removes every image once it is free', () => {
    const blocked = run(imageCleanupArgs('remove-all', REPO, 2, 3));
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toContain(`images still in use after 3s: ${REPO}:r2`);
    expect(tags(REPO)).toEqual(['r2']);
    docker(['rm', container]);
    const r = run(imageCleanupArgs('remove-all', REPO, 2, 3));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`removed ${REPO}:r2`);
    expect(tags(REPO)).toEqual([]);
    expect(tags(OTHER)).toEqual(['r1']);
  });

  it('refuses a bad keep count or mode with a clear message', () => {
    const r = spawnSync('sh', ['-s', '--', 'prune', REPO, 'x'], { input: IMAGE_CLEANUP_SCRIPT, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('keep must be a whole number, not x');
    const m = spawnSync('sh', ['-c', `sh -s -- ${shQuote('wipe')} ${shQuote(REPO)}`], { input: IMAGE_CLEANUP_SCRIPT, encoding: 'utf8' });
    expect(m.status).toBe(2);
    expect(m.stderr).toContain('mode must be prune or remove-all, not wipe');
    expect(() => imageCleanupArgs('prune', REPO, 0)).toThrow('keep must be a whole number >= 1');
  });
});
