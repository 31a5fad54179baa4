/**
 * The real-browser tier: Debian's chromium driven by playwright-core (no browser download), with a
 * fresh profile per launch. Outside CI a missing chromium skips the tier; in CI it fails it.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import type { BrowserContext } from 'playwright-core';
import type { TierCheck } from './tier';

export const CHROMIUM = process.env.D8_CHROMIUM || '/usr/bin/chromium';

export const browserTier: TierCheck = {
  tier: 'browser',
  missing: () => (fs.existsSync(CHROMIUM) ? null : `no chromium at ${CHROMIUM}`),
  enable: 'apt-get install chromium (sh scripts/ci-setup-system.sh installs it), or point D8_CHROMIUM at a Chromium binary',
};

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

/** A headless chromium with a fresh --user-data-dir (removed by close()). */
export async function launchBrowser(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 800 }, timeout: 60_000,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
