import type { GitHubContext } from '../../src/model/github.js'
import { autoTags, indexTags, isValidTag, sanitizeBranch } from '../../src/model/tags.js'

const push = (ref: string, eventName = 'push'): GitHubContext => ({
  eventName,
  ref,
  sha: 'abc1234',
  repository: 'colliery-io/brokkr',
  owner: 'colliery-io',
  serverUrl: 'https://github.com',
  fromFork: false
})

describe('auto tags', () => {
  it.each([
    ['refs/heads/main', ['main']],
    ['refs/heads/develop', ['develop']],
    ['refs/heads/feature/Login UI', ['feature-Login-UI']],
    ['refs/heads/-odd-', ['odd']],
    ['refs/tags/v1.2.3', ['1.2.3', '1.2', '1', 'latest']],
    ['refs/tags/v0.4.0', ['0.4.0', '0.4', '0', 'latest']],
    ['refs/tags/v2.0.0-rc.1', ['2.0.0-rc.1']],
    ['refs/tags/v1.2.3+build.5', ['1.2.3', '1.2', '1', 'latest']],
    ['refs/tags/v1.2', []],
    ['refs/tags/release-7', []],
    ['refs/pull/7/merge', []]
  ])('%s gives %j', (ref, tags) => {
    expect(autoTags(push(ref))).toEqual(tags)
  })

  it('tags nothing on events other than push', () => {
    expect(autoTags(push('refs/heads/main', 'workflow_dispatch'))).toEqual([])
  })

  it('puts the sha first and removes duplicates', () => {
    expect(indexTags('abc1234', ['main', 'edge'], true, push('refs/heads/main'))).toEqual(['abc1234', 'main', 'edge'])
    expect(indexTags('abc1234', [], false, push('refs/heads/main'))).toEqual(['abc1234'])
  })
})

describe('tag syntax', () => {
  it.each(['latest', '1.2.3', 'abc_DEF-1.x', 'x'.repeat(128)])('accepts %s', (t) => expect(isValidTag(t)).toBe(true))
  it.each(['', '.x', '-x', 'a/b', 'a:b', 'x'.repeat(129), 'a b'])('rejects %j', (t) => expect(isValidTag(t)).toBe(false))
  it('sanitizes long branches to valid tags', () => {
    expect(isValidTag(sanitizeBranch('a/'.repeat(100)))).toBe(true)
  })
})
