import { publishCheckSkipped } from '../../src/registry/publish-check.js'

describe('publish check', () => {
  it.each([
    [{ publishCheck: false, dryRun: false }, true, true, 'publish-check: false'],
    [{ publishCheck: true, dryRun: false }, false, true, 'not pushing'],
    [{ publishCheck: true, dryRun: true }, true, true, 'dry-run'],
    [{ publishCheck: true, dryRun: false }, true, false, 'no credentials the action can read; the push uses docker login'],
    [{ publishCheck: true, dryRun: false }, true, true, undefined]
  ])('%j, push %s, credentials %s: skipped for %s', (config, push, credentials, reason) => {
    expect(publishCheckSkipped(config, push, credentials ? { username: 'u', password: 'p' } : undefined)).toBe(reason)
  })
})
