import { actNotice, ghaCacheAvailable } from '../../src/config/environment.js'
import { envWith } from './helpers.js'

describe('under act', () => {
  it('says nothing outside act', () => {
    expect(actNotice(envWith({ ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_CACHE_URL: 'http://c/' }), 'x64')).toBeUndefined()
  })

  it("says where the cache goes when act's cache server is on", () => {
    const line = actNotice(envWith({ ACT: 'true', ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_CACHE_URL: 'http://host:34567/' }), 'x64')
    expect(line).toMatch(/^Running under act: cache: gha goes to act's cache server; every platform builds on this amd64 machine/)
  })

  it('says the cache is off without it, in one line', () => {
    const line = actNotice(envWith({ ACT: 'true', ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_RESULTS_URL: 'http://host:34567/' }), 'arm64')!
    expect(line).toMatch(/cache: gha is off .*this arm64 machine/)
    expect(line).not.toContain('\n')
  })
})

describe('the gha cache under act', () => {
  it("is there only with act's cache server: its ACTIONS_RESULTS_URL is the artifact server", () => {
    expect(ghaCacheAvailable(envWith({ ACT: 'true', ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_RESULTS_URL: 'http://host:34567/' }))).toBe(false)
    expect(
      ghaCacheAvailable(
        envWith({ ACT: 'true', ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_RESULTS_URL: 'http://host:34567/', ACTIONS_CACHE_URL: 'http://host:40000/' })
      )
    ).toBe(true)
    expect(ghaCacheAvailable(envWith({ ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_RESULTS_URL: 'https://results/' }))).toBe(true)
  })
})
