import { composeIndex } from '../../src/manifest/compose.js'
import { indexAnnotations } from '../../src/run/manifest.js'
import { parseConfig, type ManifestConfig } from '../../src/config/parse.js'
import { imageMetadata } from '../../src/model/oci-metadata.js'
import { OCI_INDEX, OCI_MANIFEST } from '../../src/model/oci.js'
import { toGitHubContext } from '../../src/model/github.js'
import { defaultInputs } from '../fixtures/inputs.js'
import { pushToMain } from './helpers.js'

const digest = (c: string) => `sha256:${c.repeat(64)}`
const archIndex = (arch: string, c: string) => ({
  digest: digest(c),
  mediaType: OCI_INDEX,
  size: 1,
  json: {
    manifests: [
      { mediaType: OCI_MANIFEST, digest: digest(c === 'a' ? 'b' : 'd'), size: 10, platform: { os: 'linux', architecture: arch } },
      {
        mediaType: OCI_MANIFEST,
        digest: digest(c === 'a' ? 'e' : 'f'),
        size: 5,
        platform: { os: 'unknown', architecture: 'unknown' },
        annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': digest('b') }
      }
    ]
  }
})
const sources = [
  { answer: archIndex('amd64', 'a'), platform: { os: 'linux', architecture: 'amd64' } },
  { answer: archIndex('arm64', 'c'), platform: { os: 'linux', architecture: 'arm64' } }
]

function manifestConfig(inputs: Record<string, string> = {}): ManifestConfig {
  const values: Record<string, string> = { ...defaultInputs(), mode: 'manifest', ...inputs }
  return parseConfig((name) => values[name] ?? '', { github: pushToMain, exists: () => true }) as ManifestConfig
}

describe('index annotations', () => {
  const github = { ...pushToMain, description: 'Brokkr broker', license: 'Apache-2.0', commitTime: '2026-11-20T12:00:00.000Z' }

  it('puts the OCI facts on the index and on each platform entry, never on attestation entries', () => {
    const annotations = indexAnnotations(manifestConfig({ annotations: 'org.opencontainers.image.vendor=Colliery' }), github, [])
    const index = JSON.parse(composeIndex(sources, annotations).toString())
    expect(index.annotations).toEqual({
      'org.opencontainers.image.source': 'https://github.com/colliery-io/brokkr',
      'org.opencontainers.image.revision': '0123456789abcdef0123456789abcdef01234567',
      'org.opencontainers.image.created': '2026-11-20T12:00:00.000Z',
      'org.opencontainers.image.title': 'brokkr-agent',
      'org.opencontainers.image.version': 'main',
      'org.opencontainers.image.description': 'Brokkr broker',
      'org.opencontainers.image.licenses': 'Apache-2.0',
      'org.opencontainers.image.vendor': 'Colliery'
    })
    expect(index.manifests.filter((d: any) => d.annotations?.['org.opencontainers.image.title'])).toHaveLength(2)
    for (const attestation of index.manifests.filter((d: any) => d.platform.os === 'unknown')) {
      expect(Object.keys(attestation.annotations)).toEqual(['vnd.docker.reference.type', 'vnd.docker.reference.digest'])
    }
  })

  it("lets the user's annotations win", () => {
    const annotations = indexAnnotations(manifestConfig({ annotations: 'org.opencontainers.image.title=Brokkr broker' }), github, [])
    expect(annotations['org.opencontainers.image.title']).toBe('Brokkr broker')
  })

  it('is the same for two jobs: created is the commit time, else the newest arch image, never the clock', () => {
    const config = manifestConfig()
    const built = [{ created: '2026-11-21T10:00:00Z' }, { created: '2026-11-21T10:05:00Z' }, {}]
    expect(indexAnnotations(config, github, built)['org.opencontainers.image.created']).toBe('2026-11-20T12:00:00.000Z')
    const noCommit = { ...github, commitTime: undefined }
    expect(indexAnnotations(config, noCommit, built)['org.opencontainers.image.created']).toBe('2026-11-21T10:05:00Z')
    expect(composeIndex(sources, indexAnnotations(config, noCommit, built))).toEqual(composeIndex(sources, indexAnnotations(config, noCommit, built)))
    expect(indexAnnotations(config, noCommit, [])['org.opencontainers.image.created']).toBeUndefined()
  })

  it('leaves the index unannotated when asked for nothing (the old shape)', () => {
    expect(JSON.parse(composeIndex(sources).toString()).annotations).toBeUndefined()
  })

  it('reads the description, license and commit time from the event payload', () => {
    const raw = {
      eventName: 'push',
      ref: 'refs/heads/main',
      sha: 'abc',
      serverUrl: 'https://github.com',
      payload: {
        repository: { full_name: 'colliery-io/brokkr', description: ' Brokkr ', license: { spdx_id: 'Apache-2.0' } },
        head_commit: { timestamp: '2026-11-20T13:00:00+01:00' }
      }
    }
    expect(toGitHubContext(raw, {})).toMatchObject({ description: 'Brokkr', license: 'Apache-2.0', commitTime: '2026-11-20T12:00:00.000Z' })
    const unknown = { ...raw, payload: { repository: { full_name: 'x/y', description: null, license: { spdx_id: 'NOASSERTION' } } } }
    const context = toGitHubContext(unknown, {})
    expect(context.license).toBeUndefined()
    expect(context.description).toBeUndefined()
    expect(imageMetadata(context, 'ghcr.io/x/y', 'abc', '')).not.toHaveProperty('org.opencontainers.image.created')
  })
})
