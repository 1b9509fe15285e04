// Three projects: unit tests of the pure code; the fast layer, which runs manifest mode and the
// layout pusher in-process against an in-process registry and the fault proxy (no Docker); and the
// end-to-end suites that run the bundled dist/ against real engines, buildx, QEMU and a registry.
//
// A fourth, `doubles`, checks the doubles the e2e suites lean on (the cache service v1 and v2, the
// registry fault proxy) against the real clients (@actions/cache, the Azure SDK) over real HTTP.
// Its checks take a minute and only learn something when a double, a check or a client changes, so
// it runs only then: while the stamp __tests__/doubles/verified.sha256 (see stamp.mjs) does not
// match those files, or when asked (`npm run test:doubles`, which refreshes the stamp when it
// passes). A unit test fails on a stale stamp, so a changed double cannot land unchecked.
import { stampIsStale } from './__tests__/doubles/stamp.mjs'

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
    },
    ...(process.env.BROKKR_TEST_DOUBLES || stampIsStale()
      ? [{ ...shared, displayName: 'doubles', testMatch: ['<rootDir>/__tests__/doubles/**/*.test.ts'] }]
      : [])
  ],
  testTimeout: 600000,
  reporters: ['default', '<rootDir>/__tests__/summary-reporter.mjs']
}
