/** Test tiers: unit and integration always run; browser (chromium), pulumi (mocks), system (sshd, docker), engine
 *  (real pulumi CLI) and hosts (systemd containers) need infrastructure and say how to enable it when it is missing
 *  (see tests/support/tier.ts). */
const tier = (name) => ({
  displayName: name,
  testMatch: [`<rootDir>/tests/${name}/**/*.test.ts`],
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true, tsconfig: '<rootDir>/tests/tsconfig.json' }] },
  testEnvironment: 'node',
});
module.exports = {
  projects: ['unit', 'integration', 'browser', 'pulumi', 'system', 'engine', 'hosts'].map(tier),
  testTimeout: 120000,
};
