/**
 * Test tiers that need infrastructure (sshd, a Docker engine, a Pulumi CLI). Outside CI a missing
 * piece skips the tier with one line saying how to enable it; in CI (CI=true) it fails the run.
 */
export interface TierCheck {
  /** Tier name, as printed. */
  tier: string;
  /** Returns null when the infrastructure is there, or what is missing. */
  missing: () => string | null;
  /** One line: how to enable the tier on this machine. */
  enable: string;
}

export function describeTier(check: TierCheck, name: string, body: () => void): void {
  const missing = check.missing();
  if (missing === null) {
    describe(name, body);
    return;
  }
  if (inCi()) {
    describe(name, () => {
      it(`has its infrastructure (${check.tier})`, () => {
        throw new Error(`${check.tier} tier: ${missing}. In CI this is a failure; ${check.enable}`);
      });
    });
    return;
  }
  process.stderr.write(`[skip] ${check.tier} tier: ${missing}; to enable: ${check.enable}\n`);
  describe.skip(name, body);
}

/** Any non-empty CI other than `false` or `0` means CI (CI=1, CI=yes, CI=true all do). */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.CI ?? '').trim().toLowerCase();
  return v !== '' && v !== 'false' && v !== '0';
}
