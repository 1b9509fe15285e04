// Two projects: fast unit tests of the pure planning code, and the end-to-end
// suite that runs the bundled dist/ against a real engine, buildx, QEMU and registry.
const tsTransform = {
  '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }]
}
const shared = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: tsTransform,
  testEnvironment: 'node'
}
export default {
  projects: [
    { ...shared, displayName: 'unit', testMatch: ['<rootDir>/__tests__/unit/**/*.test.ts'] },
    {
      ...shared,
      displayName: 'e2e',
      testMatch: ['<rootDir>/__tests__/e2e/**/*.test.ts'],
      globalSetup: '<rootDir>/__tests__/e2e/support/global-setup.mjs',
      globalTeardown: '<rootDir>/__tests__/e2e/support/global-teardown.mjs'
    }
  ],
  testTimeout: 600000,
  reporters: ['default', '<rootDir>/__tests__/summary-reporter.mjs']
}
