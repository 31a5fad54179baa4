/** Jest-only fleet setup (it registers hooks): kept apart from fleet.ts, which benches import too. */
import fs from 'fs';
import path from 'path';
import { Fleet, freePort, stopAgentsUnder } from './fleet';

/**
 * A fleet whose one slave `local` is installed for real on this machine (the real bundle and
 * install.sh, under a temp HOME): registers the jest hooks; `head()` is the repository's commit.
 */
export function localInstallFleet(stack?: string): { fleet: Fleet; slaveHome: string; head: () => string } {
  const fleet = new Fleet(stack);
  const slaveHome = path.join(fleet.root, 'slave-home');
  let head = '';
  beforeAll(async () => {
    const port = await freePort();
    fs.mkdirSync(slaveHome);
    head = fleet.initCheckoutRepo([{ name: 'local', port }], { installAttempts: 1, installDelaySeconds: 0 });
  });
  afterAll(async () => {
    await stopAgentsUnder(slaveHome);
    await fleet.cleanup();
  });
  return { fleet, slaveHome, head: () => head };
}
