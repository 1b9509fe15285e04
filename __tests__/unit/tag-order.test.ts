import { commitVerdict, compareVersions, tagOrders, versionVerdict, type Held } from '../../src/model/tag-order.js'
import { pushToMain } from './helpers.js'

const index = (annotations: Record<string, string>): Held => ({ kind: 'index', digest: `sha256:${'a'.repeat(64)}`, annotations })
const version = (v: string) => index({ 'org.opencontainers.image.version': v })
const commit = (sha: string, created?: string) =>
  index({ 'org.opencontainers.image.revision': sha, ...(created ? { 'org.opencontainers.image.created': created } : {}) })

describe('which tags move only forward', () => {
  it.each([
    ['a branch push', pushToMain, ['abc', 'main', 'edge'], { abc: 'always', main: 'commit', edge: 'commit' }],
    [
      'a release',
      { ...pushToMain, ref: 'refs/tags/v1.2.4' },
      ['abc', '1.2.4', '1.2', '1', 'latest', 'edge'],
      { abc: 'always', '1.2.4': 'always', '1.2': 'version', '1': 'version', latest: 'version', edge: 'commit' }
    ],
    ['a pre-release', { ...pushToMain, ref: 'refs/tags/v2.0.0-rc.1' }, ['abc', '2.0.0-rc.1'], { abc: 'always', '2.0.0-rc.1': 'always' }]
  ])('on %s', (_name, github, tags, expected) => {
    expect(Object.fromEntries(tagOrders(tags, 'abc', github))).toEqual(expected)
  })
})

describe('semantic-version order', () => {
  it.each([
    ['1.2.4', '2.0.0', -1],
    ['2.0.0', '1.2.4', 1],
    ['1.10.0', '1.9.9', 1],
    ['1.2.3', '1.2.3', 0],
    ['1.2.3-rc.1', '1.2.3', -1],
    ['1.2.3-rc.2', '1.2.3-rc.10', -1],
    ['1.2.3-alpha', '1.2.3-alpha.1', -1],
    ['1.2.3-beta', '1.2.3-alpha', 1],
    ['v1.3.0', '1.2.4', 1],
    ['main', '1.2.3', undefined]
  ])('%s against %s: %s', (a, b, sign) => {
    const order = compareVersions(a, b)
    expect(order === undefined ? undefined : Math.sign(order)).toBe(sign)
  })
})

describe('a release line moves only up', () => {
  it.each([
    ['nothing there', 'latest', '1.2.4', { kind: 'nothing' } as Held, true, /^new tag$/],
    ['v2.0.0 there, v1.2.4 pushed', 'latest', '1.2.4', version('2.0.0'), false, /^kept at 2.0.0 \(newer than 1.2.4\)$/],
    ['1.2.3 there', '1.2', '1.2.4', version('1.2.3'), true, /^moved from 1.2.3 to 1.2.4$/],
    ['the same version again (a re-run)', '1', '1.2.4', version('1.2.4'), true, /^moved from 1.2.4 to 1.2.4$/],
    ['an index without a version', 'latest', '1.2.4', index({}), true, /carries no org.opencontainers.image.version/]
  ])('%s', (_name, tag, ours, held, move, reason) => {
    const verdict = versionVerdict(tag, ours, held)
    expect(verdict.move).toBe(move)
    expect(verdict.reason).toMatch(reason)
  })
})

describe('a branch tag moves only to a newer commit', () => {
  const ours = { sha: 'b'.repeat(40), created: '2026-01-02T00:00:00.000Z' }
  it.each([
    ['nothing there', { kind: 'nothing' } as Held, undefined, true, /^new tag$/],
    ['the same commit', commit(ours.sha), undefined, true, /^same commit$/],
    ['GitHub: this run is ahead', commit('a'.repeat(40)), 'ahead', true, /^moved from aaaaaaaaaaaa$/],
    ['GitHub: this run is behind', commit('c'.repeat(40)), 'behind', false, /^kept at cccccccccccc \(newer than this run\)$/],
    ['GitHub: diverged (a force-push)', commit('c'.repeat(40)), 'diverged', true, /not an ancestor .*force-push/],
    ['no GitHub: the held commit is older', commit('a'.repeat(40), '2026-01-01T00:00:00.000Z'), undefined, true, /older commit time/],
    ['no GitHub: the held commit is newer', commit('c'.repeat(40), '2026-01-03T00:00:00.000Z'), undefined, false, /^kept at cccccccccccc/],
    ['an index the action did not make', index({}), 'behind', true, /carries no org.opencontainers.image.revision/]
  ] as const)('%s', (_name, held, order, move, reason) => {
    const verdict = commitVerdict('main', ours, held, order)
    expect(verdict.move).toBe(move)
    expect(verdict.reason).toMatch(reason)
  })
})
