/**
 * The fast layer: manifest mode and the OCI-layout pusher run in-process (the same code dist/
 * bundles) against the real distribution registry (token auth) with the fault proxy in front.
 * No Docker: seconds.
 * Covers the manifest scenarios of docs/reliability.md (read-after-write lag, random faults, an
 * outage, wrong arch, a missing arch, auth, two runs at once) plus a digest mismatch and
 * attestations that belong to another image.
 */
import { jest } from '@jest/globals'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig, type ManifestConfig } from '../../src/config/parse.js'
import { pushLayout } from '../../src/registry/layout-push.js'
import { runManifest } from '../../src/run/manifest.js'
import { readEnvironment } from '../../src/config/environment.js'
import { RegistryClient } from '../../src/registry/client.js'
import { retryPolicy } from '../../src/registry/retry.js'
import type { GitHubContext } from '../../src/model/github.js'
import { defaultInputs } from '../fixtures/inputs.js'
import { digestOf, startRegistry } from '../support/registry.mjs'
import { startFaultProxy } from '../e2e/support/fault-proxy.mjs'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const json = (o: unknown) => Buffer.from(JSON.stringify(o))
const newSha = () => randomBytes(20).toString('hex')
const REPO = 'fast/brokkr-agent'
const pushToMain: GitHubContext = {
  eventName: 'push',
  ref: 'refs/heads/main',
  sha: '',
  repository: 'colliery-io/brokkr',
  owner: 'colliery-io',
  serverUrl: 'https://github.com',
  fromFork: false
}

let registry: Awaited<ReturnType<typeof startRegistry>>
let proxy: Awaited<ReturnType<typeof startFaultProxy>>
let stdout: ReturnType<typeof jest.spyOn> | undefined

beforeAll(async () => {
  const users = { brokkr: { password: 'secret', actions: ['pull', 'push'] }, reader: { password: 'r', actions: ['pull'] } }
  registry = await startRegistry({ auth: 'token', users })
  proxy = await startFaultProxy({ target: registry.url, seed: 7 })
  // the action logs through @actions/core to stdout: keep the test output readable
  stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true)
})
afterAll(async () => {
  stdout?.mockRestore()
  await proxy?.close()
  await registry?.close()
})
afterEach(() => {
  proxy.configure({})
})

function config(sha: string, inputs: Record<string, string> = {}): ManifestConfig {
  const values: Record<string, string> = {
    ...defaultInputs(),
    mode: 'manifest',
    image: `${proxy.host}/${REPO}`,
    username: 'brokkr',
    password: 'secret',
    sha,
    'retry-delay': '20ms',
    'wait-timeout': '10s',
    ...inputs
  }
  return parseConfig((name) => values[name] ?? '', { github: pushToMain, exists: () => true }) as ManifestConfig
}

/** How to spoil what an arch image carries: its attestation names another image, or its statement does. */
interface Spoil {
  reference?: string
  subject?: string
}

/**
 * What BuildKit pushes for one platform: an index of the image manifest and its attestation
 * manifest (BuildKit's default, non-artifact form: an image config and one in-toto layer holding a
 * SLSA v0.2 provenance statement about the image, mode=min).
 */
async function seedArchImage(sha: string, arch: string, configArch = arch, spoil: Spoil = {}): Promise<{ tag: string; image: string }> {
  const layer = await registry.putBlob(REPO, randomBytes(64))
  const configBlob = json({ architecture: configArch, os: 'linux', rootfs: { type: 'layers', diff_ids: [layer] } })
  const configDigest = await registry.putBlob(REPO, configBlob)
  const image = json({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: configBlob.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: 64 }]
  })
  const imageDigest = await registry.putManifest(REPO, digestOf(image), image, OCI_MANIFEST)
  const statement = json({
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType: 'https://slsa.dev/provenance/v0.2',
    subject: [{ name: `pkg:docker/${REPO}@${sha}-${arch}?platform=linux%2F${arch}`, digest: { sha256: (spoil.subject ?? imageDigest).slice(7) } }],
    predicate: { builder: { id: '' }, buildType: 'https://mobyproject.org/buildkit@v1', invocation: { parameters: { frontend: 'dockerfile.v0' } } }
  })
  const statementDigest = await registry.putBlob(REPO, statement)
  const attestationConfig = json({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [statementDigest] } })
  const attestation = json({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await registry.putBlob(REPO, attestationConfig), size: attestationConfig.length },
    layers: [
      {
        mediaType: 'application/vnd.in-toto+json',
        digest: statementDigest,
        size: statement.length,
        annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2' }
      }
    ]
  })
  const attestationDigest = await registry.putManifest(REPO, digestOf(attestation), attestation, OCI_MANIFEST)
  const index = json({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { mediaType: OCI_MANIFEST, digest: imageDigest, size: image.length, platform: { architecture: arch, os: 'linux' } },
      {
        mediaType: OCI_MANIFEST,
        digest: attestationDigest,
        size: attestation.length,
        platform: { architecture: 'unknown', os: 'unknown' },
        annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': spoil.reference ?? imageDigest }
      }
    ]
  })
  return { tag: await registry.putManifest(REPO, `${sha}-${arch}`, index, OCI_INDEX), image: imageDigest }
}

const digestAt = async (tag: string) => (await registry.manifest(REPO, tag))?.digest
const platformsOf = async (tag: string) => {
  const m = await registry.manifest(REPO, tag)
  if (!m) return undefined
  return JSON.parse(m.body.toString())
    .manifests.filter((d: any) => d.platform?.os !== 'unknown')
    .map((d: any) => `${d.platform.os}/${d.platform.architecture}`)
    .sort()
}

describe('manifest mode, in-process against the registry behind the fault proxy', () => {
  it('publishes exactly the verified arch manifests under <sha> and the branch, and reads them back', async () => {
    const sha = newSha()
    const sources = { 'linux/amd64': (await seedArchImage(sha, 'amd64')).tag, 'linux/arm64': (await seedArchImage(sha, 'arm64')).tag }
    const result = await runManifest(config(sha), pushToMain, readEnvironment({}))
    expect(result.outputs).toMatchObject({ tags: `${sha},main`, platforms: 'linux/amd64,linux/arm64' })
    expect(JSON.parse(result.outputs.sources)).toEqual(sources)
    expect(await digestAt(sha)).toBe(result.outputs.digest)
    expect(await digestAt('main')).toBe(result.outputs.digest)
    expect(await platformsOf(sha)).toEqual(['linux/amd64', 'linux/arm64'])
  })

  it('checks each attestation it carries (one read of its manifest, one per statement) and lists what is attached', async () => {
    const sha = newSha()
    await seedArchImage(sha, 'amd64')
    await seedArchImage(sha, 'arm64')
    proxy.clearLog()
    const result = await runManifest(config(sha), pushToMain, readEnvironment({}))
    expect(result.summary.rows).toContainEqual(['attached linux/amd64', 'provenance (SLSA v0.2, mode=min)'])
    expect(result.summary.rows).toContainEqual(['attached linux/arm64', 'provenance (SLSA v0.2, mode=min)'])
    const index = JSON.parse((await registry.manifest(REPO, sha))!.body.toString())
    const attestations = index.manifests.filter((d: any) => d.platform.os === 'unknown')
    expect(attestations).toHaveLength(2)
    for (const d of attestations) {
      const manifest = JSON.parse((await registry.manifest(REPO, d.digest))!.body.toString())
      const reads = (kind: string, digest: string) => proxy.log.filter((e: any) => e.method === 'GET' && e.path.endsWith(`/${kind}/${digest}`)).length
      expect(reads('manifests', d.digest)).toBe(1)
      expect(reads('blobs', manifest.layers[0].digest)).toBe(1)
    }
  })

  it.each([
    ['its attestation manifest points at another image', 'reference', 'attestation manifest sha256:[0-9a-f]{64} points at @OTHER, not at @OURS beside it'],
    [
      'its in-toto statement is about another image',
      'subject',
      'in-toto statement sha256:[0-9a-f]{64} of attestation manifest sha256:[0-9a-f]{64} is about @OTHER, not @OURS'
    ]
  ])('refuses an arch image when %s: one line naming both digests, no tag written', async (_, what, line) => {
    const sha = newSha()
    const amd64 = (await seedArchImage(sha, 'amd64')).image
    const mainBefore = await digestAt('main')
    // the amd64 image's attestation, carried beside the arm64 image
    const arm64 = (await seedArchImage(sha, 'arm64', 'arm64', { [what]: amd64 })).image
    const error = await runManifest(config(sha), pushToMain, readEnvironment({})).catch((e: Error) => e)
    expect(error).toBeInstanceOf(Error)
    const message = (error as Error).message
    expect(message.split('\n')).toHaveLength(1)
    expect(message).toMatch(
      new RegExp(`^${proxy.host}/${REPO}:${sha}-arm64: ${line.replace('@OTHER', amd64).replace('@OURS', arm64)}; the index was not written$`)
    )
    expect(await registry.manifest(REPO, sha)).toBeUndefined()
    expect(await digestAt('main')).toBe(mainBefore)
  })

  it('waits out a read-after-write lag and a sibling job still building', async () => {
    const sha = newSha()
    await seedArchImage(sha, 'amd64')
    const started = Date.now()
    // the arm64 job pushes 0.5 s in, and its tag stays invisible for 1 s after the push; the rule is
    // set before the push, so no poll in flight at 0.5 s can slip between the push and the rule
    proxy.configure({ hide: [{ repo: REPO, tag: `${sha}-arm64`, seconds: 1.5, from: 'now' }] })
    const late = new Promise((resolve) => setTimeout(resolve, 500)).then(() => seedArchImage(sha, 'arm64'))
    const result = await runManifest(config(sha), pushToMain, readEnvironment({}))
    await late
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500)
    expect(await platformsOf(sha)).toEqual(['linux/amd64', 'linux/arm64'])
    expect(result.outputs.digest).toBe(await digestAt(sha))
  })

  it('gets through 10% 5xx/429 and 5% connection resets, three runs out of three', async () => {
    const sha = newSha()
    await seedArchImage(sha, 'amd64')
    await seedArchImage(sha, 'arm64')
    const digests = new Set<string>()
    for (const seed of [11, 12, 13]) {
      proxy.configure({ errorRate: 0.1, statuses: [500, 502, 503, 429], retryAfter: 0, resetRate: 0.05, seed })
      digests.add((await runManifest(config(sha), pushToMain, readEnvironment({}))).outputs.digest)
    }
    expect(digests.size).toBe(1)
    expect(await digestAt(sha)).toBe([...digests][0])
  })

  it('retries through a registry outage', async () => {
    const sha = newSha()
    await seedArchImage(sha, 'amd64')
    await seedArchImage(sha, 'arm64')
    proxy.configure({ outageSeconds: 1, retryAfter: 0 })
    await runManifest(config(sha), pushToMain, readEnvironment({}))
    expect(proxy.log.some((e: any) => e.fate === 'outage')).toBe(true)
    expect(await platformsOf(sha)).toEqual(['linux/amd64', 'linux/arm64'])
  })

  it('refuses an image that is not its platform, naming tag, expected and real platform; <sha> is not written', async () => {
    const sha = newSha()
    await seedArchImage(sha, 'amd64')
    // an arm64 index entry whose image config says amd64: only the config tells the truth
    await seedArchImage(sha, 'arm64', 'amd64')
    await expect(runManifest(config(sha), pushToMain, readEnvironment({}))).rejects.toThrow(
      new RegExp(`${sha}-arm64.*linux/amd64.*linux/arm64|${sha}-arm64.*linux/arm64.*linux/amd64`)
    )
    expect(await registry.manifest(REPO, sha)).toBeUndefined()
  })

  it('fails at wait-timeout naming the arch image that never came; the index is untouched', async () => {
    const sha = newSha()
    await seedArchImage(sha, 'amd64')
    const started = Date.now()
    await expect(runManifest(config(sha, { 'wait-timeout': '1s' }), pushToMain, readEnvironment({}))).rejects.toThrow(
      new RegExp(`${sha}-arm64 did not appear within 1.0 s`)
    )
    expect(Date.now() - started).toBeLessThan(5000)
    expect(await registry.manifest(REPO, sha)).toBeUndefined()
  })

  it('fails, naming the reference, when the registry hands back bytes that are not the digest asked for', async () => {
    const sha = newSha()
    const amd64 = (await seedArchImage(sha, 'amd64')).image
    await seedArchImage(sha, 'arm64')
    // the proxy answers the image's digest with other bytes, under the same Docker-Content-Digest
    const headers = { 'Content-Type': OCI_MANIFEST, 'Docker-Content-Digest': amd64 }
    const body = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }
    proxy.configure({ status: [{ pathRegex: `/manifests/${amd64}$`, methods: ['GET'], status: 200, body, headers }] })
    await expect(runManifest(config(sha), pushToMain, readEnvironment({}))).rejects.toThrow(
      new RegExp(`@${amd64}: the registry sent content whose digest is sha256:[0-9a-f]{64}, not ${amd64}`)
    )
    expect(await registry.manifest(REPO, sha)).toBeUndefined()
  })

  it.each([
    [401, 'wrong credentials'],
    [403, 'no push permission']
  ])('stops at once on %s (%s) with the permissions hint', async (status) => {
    const sha = newSha()
    await seedArchImage(sha, 'amd64')
    await seedArchImage(sha, 'arm64')
    proxy.configure({ status: [{ pathRegex: '/manifests/', status }] })
    const started = Date.now()
    await expect(runManifest(config(sha), pushToMain, readEnvironment({}))).rejects.toThrow(/permissions: packages: write/)
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('refuses at once, before waiting for any arch image, when the credentials may not push (publish check)', async () => {
    const sha = newSha()
    // no arch image exists: without the check the run would wait the whole wait-timeout. The
    // realm grants `reader` only pull: the registry itself refuses the upload the check opens.
    const started = Date.now()
    await expect(runManifest(config(sha, { 'wait-timeout': '60s', username: 'reader', password: 'r' }), pushToMain, readEnvironment({}))).rejects.toThrow(
      new RegExp(`${REPO}: this job may not push there .*access denied \\(HTTP 401, UNAUTHORIZED: authentication required\\).*permissions: packages: write`)
    )
    expect(Date.now() - started).toBeLessThan(2000)
    expect(registry.tokenRequests.some((q: any) => q.user === 'reader' && q.granted?.[0]?.actions.join(',') === 'pull')).toBe(true)
    expect(proxy.log.filter((q: any) => q.path.includes(`/manifests/${sha}`))).toHaveLength(0)
  })

  it('refuses at once as well when the registry answers the upload with 403 DENIED', async () => {
    const sha = newSha()
    proxy.configure({ status: [{ pathRegex: '/blobs/uploads/$', status: 403, methods: ['POST'] }] })
    const started = Date.now()
    await expect(runManifest(config(sha, { 'wait-timeout': '60s' }), pushToMain, readEnvironment({}))).rejects.toThrow(
      new RegExp(`${REPO}: this job may not push there .*DENIED.*permissions: packages: write`)
    )
    expect(Date.now() - started).toBeLessThan(2000)
    expect(proxy.log.filter((q: any) => q.path.includes(`/manifests/${sha}`))).toHaveLength(0)
  })

  it('goes on when the registry cannot answer the publish check (HTTP 405), and publishes', async () => {
    const sha = newSha()
    await seedArchImage(sha, 'amd64')
    await seedArchImage(sha, 'arm64')
    proxy.configure({ status: [{ pathRegex: '/blobs/uploads/$', status: 405, methods: ['POST'] }] })
    const result = await runManifest(config(sha), pushToMain, readEnvironment({}))
    expect(result.summary.rows).toContainEqual(['publish check', expect.stringMatching(/^not possible on this registry \(.*HTTP 405 UNSUPPORTED: [^)]*\)/)])
    expect(await platformsOf(sha)).toEqual(['linux/amd64', 'linux/arm64'])
  })

  it('two runs for one sha at once push the same index', async () => {
    const sha = newSha()
    await seedArchImage(sha, 'amd64')
    await seedArchImage(sha, 'arm64')
    const [a, b] = await Promise.all([runManifest(config(sha), pushToMain, readEnvironment({})), runManifest(config(sha), pushToMain, readEnvironment({}))])
    expect(a.outputs.digest).toBe(b.outputs.digest)
    expect(await digestAt(sha)).toBe(a.outputs.digest)
  })
})

describe('the OCI-layout pusher, in-process through the fault proxy', () => {
  /** An OCI image layout as `buildx build --output type=oci,tar=false` writes it. */
  function writeLayout(dir: string): string {
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true })
    const put = (b: Buffer) => {
      const d = digestOf(b)
      writeFileSync(join(dir, 'blobs', 'sha256', d.slice(7)), b)
      return d
    }
    const layer = randomBytes(300_000)
    const configBlob = json({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })
    const image = json({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: put(configBlob), size: configBlob.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: put(layer), size: layer.length }]
    })
    const imageDigest = put(image)
    const index = json({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: imageDigest, size: image.length, platform: { architecture: 'arm64', os: 'linux' } }]
    })
    const indexDigest = put(index)
    writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
    writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: OCI_INDEX, digest: indexDigest, size: index.length }] }))
    return indexDigest
  }

  it('pushes blobs first and the tag last, every request retried, under 10% faults and resets', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'brokkr-fast-layout-'))
    try {
      const expected = writeLayout(dir)
      const cfg = config(newSha(), { retries: '8' })
      const client = new RegistryClient(cfg.image, cfg.registry, cfg.credentials, 'push', retryPolicy(cfg))
      proxy.configure({ errorRate: 0.1, statuses: [500, 502, 503, 429], retryAfter: 0, resetRate: 0.05, seed: 99 })
      const digest = await pushLayout(client, dir, 'layout-arm64')
      proxy.configure({})
      expect(digest).toBe(expected)
      expect(await digestAt('layout-arm64')).toBe(expected)
      const puts = proxy.log.filter((e: any) => e.method === 'PUT').map((e: any) => e.path)
      expect(puts[puts.length - 1]).toMatch(/\/manifests\/layout-arm64$/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
