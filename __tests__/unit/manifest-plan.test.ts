import { parseConfig, type ManifestConfig } from '../../src/config/parse.js'
import type { GitHubContext } from '../../src/model/github.js'
import { describeManifestPlan, manifestResult, planManifest } from '../../src/plan/manifest.js'
import { defaultInputs } from '../fixtures/inputs.js'
import { pushToMain } from './helpers.js'

// The manifest planner, input to plan: tags, sources, the publish check and what a dry run says.

const credentials = { username: 'u', password: 'p' }
function config(inputs: Record<string, string> = {}, github: GitHubContext = pushToMain): ManifestConfig {
  const all: Record<string, string> = { ...defaultInputs(), mode: 'manifest', sha: 'abc1234', ...inputs }
  const parsed = parseConfig((name) => (all[name] ?? '').trim(), { github, exists: () => true })
  if (parsed.mode !== 'manifest') throw new Error('expected a manifest config')
  return parsed
}
const plan = (inputs: Record<string, string> = {}, github: GitHubContext = pushToMain, probes: { credentials?: typeof credentials } = { credentials }) =>
  planManifest(config(inputs, github), github, probes)

describe('manifest plan', () => {
  it.each([
    ['a push to main', {}, pushToMain, ['abc1234', 'main']],
    ['a release tag', {}, { ...pushToMain, ref: 'refs/tags/v1.4.2' }, ['abc1234', '1.4.2', '1.4', '1', 'latest']],
    ['extra tags', { tags: 'edge, nightly' }, pushToMain, ['abc1234', 'main', 'edge', 'nightly']],
    ['no automatic tags', { 'auto-tags': 'false' }, pushToMain, ['abc1234']]
  ])('tags the index on %s', (_name, inputs, github, tags) => {
    expect(plan(inputs, github).tags).toEqual(tags)
  })

  it('waits for one arch image per platform, in the order of platforms', () => {
    const p = plan({ platforms: 'linux/arm64,linux/amd64' })
    expect(p.sources.map((s) => [s.ref, s.tag])).toEqual([
      ['ghcr.io/colliery-io/brokkr-agent:abc1234-arm64', 'abc1234-arm64'],
      ['ghcr.io/colliery-io/brokkr-agent:abc1234-amd64', 'abc1234-amd64']
    ])
    expect(describeManifestPlan(p)).toContain('source linux/arm64: ghcr.io/colliery-io/brokkr-agent:abc1234-arm64')
  })

  it.each([
    ['credentials in hand', {}, { credentials }, undefined],
    ['none the action can read', {}, {}, 'no credentials the action can read; the push uses docker login'],
    ['publish-check: false', { 'publish-check': 'false' }, { credentials }, 'publish-check: false'],
    ['a dry run', { 'dry-run': 'true' }, { credentials }, 'dry-run']
  ])('publish check with %s', (_name, inputs, probes, skipped) => {
    expect(plan(inputs, pushToMain, probes).publishCheckSkipped).toBe(skipped)
  })

  it('says its steps in words, which is what a dry run prints and reports', () => {
    const p = plan({ 'dry-run': 'true', 'wait-timeout': '5m' })
    expect(p.steps).toEqual([
      'wait up to 300.0 s for ghcr.io/colliery-io/brokkr-agent:abc1234-amd64, ghcr.io/colliery-io/brokkr-agent:abc1234-arm64 and verify each image config',
      'read what main holds now; move each only to a newer index (main by commit)',
      'push the index of those arch images as ghcr.io/colliery-io/brokkr-agent:abc1234',
      'push the index of those arch images as ghcr.io/colliery-io/brokkr-agent:main',
      'read ghcr.io/colliery-io/brokkr-agent:abc1234 back and verify it'
    ])
    expect(manifestResult(p).summary).toMatchObject({ title: 'Dry run: Brokkr manifest agent', rows: expect.arrayContaining([['plan', p.steps.join('\n')]]) })
  })

  it('orders release lines by version and the rest by commit', () => {
    const p = plan({ tags: 'edge' }, { ...pushToMain, ref: 'refs/tags/v1.2.4' })
    expect(p.version).toBe('1.2.4')
    expect(p.steps[1]).toBe('read what 1.2, 1, latest, edge hold now; move each only to a newer index (1.2, 1, latest by release version; edge by commit)')
  })

  it('plans nothing to push on a pull request, and says why', () => {
    const p = plan({}, { ...pushToMain, eventName: 'pull_request', ref: 'refs/pull/7/merge' })
    expect(p.push.push).toBe(false)
    expect(manifestResult(p)).toEqual({
      outputs: { image: 'ghcr.io/colliery-io/brokkr-agent' },
      summary: { title: 'Brokkr manifest agent: skipped', rows: expect.arrayContaining([['pushed', expect.stringMatching(/^false \(pull_request event/)]]) }
    })
  })
})
