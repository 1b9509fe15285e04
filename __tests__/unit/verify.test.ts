import { readFileSync } from 'node:fs'
import { composeIndex } from '../../src/manifest/compose.js'
import type { Manifest } from '../../src/model/oci.js'
import {
  configPlatformProblem,
  isAttestation,
  listPlatforms,
  pickPlatformManifest,
  pushedIndexProblem,
  type VerifiedSource
} from '../../src/manifest/verify.js'

/** Real answers captured with `docker buildx imagetools inspect --raw` from the e2e stack (BuildKit 0.13, provenance on). */
function fixture(name: string): any {
  return JSON.parse(readFileSync(new URL(`../fixtures/registry/${name}.json`, import.meta.url), 'utf8'))
}
function answer(name: string, digest = `sha256:${name}`): Manifest {
  const text = readFileSync(new URL(`../fixtures/registry/${name}.json`, import.meta.url))
  const json = JSON.parse(text.toString('utf8'))
  return { digest, mediaType: json.mediaType, size: text.length, json }
}

const arm64 = { os: 'linux', architecture: 'arm64' }
const amd64 = { os: 'linux', architecture: 'amd64' }
const armImage = fixture('arch-arm64').manifests[0].digest as string
const amdImage = fixture('arch-amd64').manifests[0].digest as string
const sources: VerifiedSource[] = [
  { platform: amd64, manifestDigest: amdImage },
  { platform: arm64, manifestDigest: armImage }
]

describe('arch image checks', () => {
  it('finds the one platform manifest next to its attestation', () => {
    expect(pickPlatformManifest('img:s-arm64', answer('arch-arm64'), arm64)).toEqual({ digest: armImage })
  })
  it('names the tag, the expected and the real platform when they differ', () => {
    expect(pickPlatformManifest('img:s-arm64', answer('arch-amd64'), arm64)).toEqual({ problem: 'img:s-arm64 is linux/amd64, expected linux/arm64' })
  })
  it('refuses an arch tag that already holds several platforms', () => {
    const result = pickPlatformManifest('img:s-arm64', answer('index'), arm64)
    expect(result).toEqual({ problem: 'img:s-arm64 holds linux/amd64, linux/arm64; expected exactly linux/arm64' })
  })
  it('refuses an index entry that names no platform', () => {
    const bare = answer('arch-arm64')
    bare.json = { ...bare.json, manifests: [{ ...bare.json.manifests[0], platform: undefined }, bare.json.manifests[1]] }
    expect(pickPlatformManifest('img:s-arm64', bare, arm64)).toEqual({ problem: 'img:s-arm64 holds an image without a platform; expected linux/arm64' })
  })
  it('takes a plain manifest as it is', () => {
    expect(pickPlatformManifest('img:s-arm64', answer('manifest-arm64', 'sha256:m'), arm64)).toEqual({ digest: 'sha256:m' })
  })
  it('proves the platform from the image config', () => {
    expect(configPlatformProblem('r', fixture('config-arm64'), arm64)).toBeUndefined()
    expect(configPlatformProblem('r', fixture('config-amd64'), amd64)).toBeUndefined()
    expect(configPlatformProblem('img:s-arm64', fixture('config-amd64'), arm64)).toBe('img:s-arm64 is linux/amd64, expected linux/arm64')
    expect(configPlatformProblem('r', { ...fixture('config-arm64'), variant: 'v8' }, arm64)).toBeUndefined()
    expect(configPlatformProblem('r', { ...fixture('config-arm64'), os: 'windows' }, arm64)).toBe('r is windows/arm64, expected linux/arm64')
    expect(configPlatformProblem('r', {}, arm64)).toMatch(/no os\/architecture/)
  })
})

describe('pushed index checks', () => {
  it('accepts exactly the expected platforms, ignoring attestations', () => {
    const index = answer('index')
    expect(index.json.manifests.filter(isAttestation)).toHaveLength(2)
    expect(pushedIndexProblem('img:s', index, sources)).toBeUndefined()
    expect(listPlatforms(index)).toEqual(['linux/amd64', 'linux/arm64'])
  })
  it('fails when a platform is missing', () => {
    const index = answer('index')
    index.json = { ...index.json, manifests: index.json.manifests.filter((m: any) => m.platform.architecture !== 'arm64') }
    expect(pushedIndexProblem('img:s', index, sources)).toBe('img:s holds linux/amd64; expected exactly linux/amd64, linux/arm64')
  })
  it('fails when there is an extra platform', () => {
    expect(pushedIndexProblem('img:s', answer('index'), sources.slice(0, 1))).toMatch(/expected exactly linux\/amd64$/)
  })
  it('fails when an entry is not the manifest that was verified', () => {
    const wrong = [{ ...sources[0] }, { ...sources[1], manifestDigest: 'sha256:other' }]
    expect(pushedIndexProblem('img:s', answer('index'), wrong)).toMatch(/points linux\/arm64 at sha256:.*, expected sha256:other/)
  })
  it('fails on a single-platform manifest', () => {
    expect(pushedIndexProblem('img:s', answer('manifest-arm64'), sources)).toMatch(/not a multi-arch index/)
  })
})

describe('index composition', () => {
  it('merges the arch images with their attestations, in platform order, the same bytes every time', () => {
    const body = composeIndex([
      { answer: answer('arch-amd64'), platform: amd64 },
      { answer: answer('arch-arm64'), platform: arm64 }
    ])
    const index = JSON.parse(body.toString('utf8'))
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(index.manifests).toEqual([...fixture('arch-amd64').manifests, ...fixture('arch-arm64').manifests])
    expect(pushedIndexProblem('img:s', { digest: 'sha256:x', mediaType: index.mediaType, size: body.length, json: index }, sources)).toBeUndefined()
    const again = composeIndex([
      { answer: answer('arch-amd64'), platform: amd64 },
      { answer: answer('arch-arm64'), platform: arm64 }
    ])
    expect(again.equals(body)).toBe(true)
  })
  it('describes a plain manifest source by its digest, size and platform', () => {
    const index = JSON.parse(
      composeIndex([{ answer: answer('manifest-arm64', 'sha256:m'), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }]).toString('utf8')
    )
    expect(index.manifests).toEqual([
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:m', size: 857, platform: { os: 'linux', architecture: 'arm64' } }
    ])
  })
})
