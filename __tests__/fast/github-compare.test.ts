/**
 * The action's one call to GitHub (which of two commits is newer, before a branch tag moves),
 * in-process against the compare-endpoint double the reliability rows use.
 */
import { githubCompare } from '../../src/github/compare.js'
import { startGitHubApiDouble } from '../e2e/support/github-api-double.mjs'

const repository = 'colliery-io/brokkr'
const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((x) => x.repeat(40))
let api: Awaited<ReturnType<typeof startGitHubApiDouble>>
beforeAll(async () => {
  // a <- b <- c, and d, a sibling of b
  api = await startGitHubApiDouble({ token: 'ghs_t', repository, parents: { [a]: null, [b]: a, [c]: b, [d]: a } })
})
afterAll(() => api.close())
afterEach(() => api.configure({}))

describe("GitHub's compare endpoint", () => {
  const compare = (token = 'ghs_t', timeoutMs?: number) => githubCompare({ token, apiUrl: api.url, repository, timeoutMs })

  it.each([
    [a, c, 'ahead'],
    [c, a, 'behind'],
    [b, b, 'identical'],
    [b, d, 'diverged']
  ])('%s...%s is %s', async (base, head, order) => {
    expect(await compare()(base, head)).toEqual({ order })
  })

  it('is unavailable, saying why, without a token, with a refused token, an unknown commit, a failing or a silent API', async () => {
    expect(await compare('')(a, b)).toEqual({ unavailable: 'no github-token' })
    expect(await compare('ghs_wrong')(a, b)).toEqual({ unavailable: 'GitHub answered HTTP 401' })
    expect(await compare()(a, 'e'.repeat(40))).toEqual({ unavailable: 'GitHub answered HTTP 404' })
    api.configure({ status: 502 })
    expect(await compare()(a, b)).toEqual({ unavailable: 'GitHub answered HTTP 502' })
    api.configure({ hang: true })
    const started = Date.now()
    expect(await compare('ghs_t', 500)(a, b)).toEqual({ unavailable: expect.stringMatching(/did not answer/) })
    expect(Date.now() - started).toBeLessThan(5000)
  })
})
