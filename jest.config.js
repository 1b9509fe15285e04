// Three projects: unit tests of the pure code; the fast layer, which runs manifest mode and the
// layout pusher in-process against an in-process registry and the fault proxy (no Docker); and the
// end-to-end suites that run the bundled dist/ against real engines, buildx, QEMU and a registry.
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
    { ...shared, displayName: 'fast', testMatch: ['<rootDir>/__tests__/fast/**/*.test.ts'] },
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
