/**
 * Issue 3: the bundled action (dist/) end to end on a real engine, buildx, QEMU, registry
 * and a GitHub Actions cache double, run the way the GitHub runner runs it.
 * Issue 8: the whole flow runs on both engine generations: "previous" (Docker 26, buildx 0.13,
 * cache service v1) and "current" (Docker 28, buildx 0.29, cache service v2 only, as today's
 * hosted runners give it: ACTIONS_RESULTS_URL and ACTIONS_CACHE_SERVICE_V2, no ACTIONS_CACHE_URL).
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAction } from './support/harness.mjs'
import { imageConfigPlatform, readImageFile } from './support/image-files.mjs'
import { defaultInputs, openSession } from './support/session.mjs'
import { e2eNode, ensureNode24, NODE24, REPO_ROOT } from '../support/paths.mjs'
import {
  docker,
  dockerEnv as stackDockerEnv,
  engineEnv,
  makeDockerConfig as stackDockerConfig,
  readStackEnvSync,
  registryManifest,
  registryTags
} from './support/stack.mjs'

type Session = Awaited<ReturnType<typeof openSession>>
type Result = Awaited<ReturnType<typeof runAction>>

const OWNER = 'colliery-io'
const ARCHES = [
  ['linux/amd64', 'amd64', 'x86_64'],
  ['linux/arm64', 'arm64', 'aarch64']
] as const

type Engine = 'previous' | 'current'
let session: Session
let engine: Engine = 'previous'
const makeDockerConfig = () => stackDockerConfig({ engine })
const dockerEnv = (dir: string) => stackDockerEnv(dir, { engine })

/** the in-process cache double openSession started (its JSDoc type is narrower than the object) */
interface CacheDouble {
  version: 1 | 2
  requests: any[]
  clearLog(): void
  summarize?: () => { keysRead: string[]; keysHit: string[]; keysCommitted: string[]; counts: { hits: number } }
}
const double = () => session.cache as unknown as CacheDouble

/** What the builds asked of the cache service since the log was cleared, whichever protocol it speaks. */
function cacheUse(): { keysRead: string[]; blobHits: number; keysSaved: string[]; restoreHits: number } {
  const d = double()
  if (d.version === 2) {
    const s = d.summarize!()
    return {
      keysRead: s.keysRead,
      blobHits: s.keysHit.filter((k) => k.startsWith('buildkit-blob-')).length,
      keysSaved: s.keysCommitted,
      restoreHits: s.counts.hits
    }
  }
  return {
    keysRead: d.requests.flatMap((q: any) => [q.key, ...String(q.query?.keys ?? '').split(',')]).filter((k: any) => typeof k === 'string' && k !== ''),
    blobHits: d.requests.filter((q: any) => q.method === 'GET' && q.status === 200 && String(q.query?.keys).startsWith('buildkit-blob-')).length,
    keysSaved: d.requests.filter((q: any) => q.method === 'POST' && /caches\/\d+$/.test(q.path)).map((q: any) => String(q.key)),
    restoreHits: d.requests.filter((q: any) => q.method === 'GET' && q.path.endsWith('/cache') && q.status === 200).length
  }
}
const newSha = () => randomBytes(20).toString('hex')
const repo = (component: string) => `${OWNER}/brokkr-${component}`

interface RunOptions {
  mode?: 'build' | 'manifest'
  component: string
  platform?: string
  sha: string
  inputs?: Record<string, string>
  event?: 'push' | 'pull_request'
  node?: string
  dockerConfig?: string
  env?: Record<string, string>
}

async function run(o: RunOptions): Promise<Result> {
  const mode = o.mode ?? 'build'
  const inputs = { ...defaultInputs(session, { command: mode, component: o.component, platform: o.platform }), cache: 'gha', ...(o.inputs ?? {}) }
  const result = await runAction({
    inputs,
    event: o.event ?? 'push',
    sha: o.sha,
    node: o.node ?? e2eNode(),
    cwd: REPO_ROOT,
    dockerConfig: o.dockerConfig ?? makeDockerConfig(),
    cache: session.cache ? { url: session.cache.url, token: session.cache.token, version: double().version } : null,
    engine,
    stack: session.stack,
    secrets: [session.stack.env.BROKKR_REGISTRY_PASSWORD],
    env: o.env ?? {}
  })
  if (result.main.code !== 0 || (result.post && result.post.code !== 0)) {
    // make failures readable in the jest report
    console.log(`${mode} ${o.component} ${o.platform ?? ''} failed:\n${result.log}`)
  }
  return result
}

/** Every RUN/COPY/WORKDIR step of the build log was answered from cache. */
function cacheReport(result: Result): { steps: number; cached: number; uncached: string[] } {
  const text = `${result.main.stdout}\n${result.main.stderr}`
  const steps = new Map<string, string>()
  for (const m of text.matchAll(/^#(\d+) \[[^\]]*\] ((?:RUN|COPY|WORKDIR|ADD)\b.*)$/gm)) steps.set(m[1], m[2])
  const cachedIds = new Set([...text.matchAll(/^#(\d+) CACHED$/gm)].map((m) => m[1]))
  const uncached = [...steps].filter(([id]) => !cachedIds.has(id)).map(([, step]) => step)
  return { steps: steps.size, cached: steps.size - uncached.length, uncached }
}

function authsIn(dockerConfig: string): string[] {
  const config = JSON.parse(readFileSync(join(dockerConfig, 'config.json'), 'utf8'))
  return Object.entries<any>(config.auths ?? {})
    .filter(([, v]) => v && (v.auth || v.identitytoken))
    .map(([k]) => k)
}

async function prune(): Promise<void> {
  await docker(['builder', 'prune', '-af'], { env: dockerEnv(makeDockerConfig()) })
}

async function allTags(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {}
  for (const c of ['agent', 'broker']) out[c] = (await registryTags(repo(c))).sort()
  return out
}

beforeAll(() => {
  ensureNode24()
})

const stackEnv = readStackEnvSync()
const ENGINES = (['previous', 'current'] as const).map((name) => {
  const e = engineEnv(stackEnv, name)
  return [`${name}: Docker ${e.dockerVersion}, buildx ${e.buildxVersion}, cache service v${name === 'current' ? 2 : 1}`, name] as const
})

describe.each(ENGINES)('[engine %s]', (_title, name) => {
  beforeAll(async () => {
    engine = name
    session = await openSession({ log: () => {}, keepStack: true, engine: name })
  })
  afterAll(async () => {
    await session?.close()
  })

  describe('build and manifest on a push to main', () => {
    const sha = newSha()
    const built: Record<string, Result> = {}
    // start cold, so every RUN step really executes (under QEMU for arm64) and fills the gha cache
    beforeAll(prune)

    it.each(['agent', 'broker'].flatMap((c) => ARCHES.map(([platform, arch, machine]) => [c, platform, arch, machine])))(
      '1. builds %s for %s and pushes <sha>-%s',
      async (component, platform, arch, machine) => {
        const r = await run({ component, platform, sha })
        built[`${component}-${arch}`] = r
        expect(r.main.code).toBe(0)
        expect(r.post?.code).toBe(0)
        // the step that records `uname -m` really ran now (components may share other steps)
        expect(cacheReport(r).uncached.filter((step) => step.includes('uname -m > /etc/brokkr/uname'))).toHaveLength(1)
        const tag = `${sha}-${arch}`
        const answer = await registryManifest(repo(component), tag)
        expect(answer.status).toBe(200)
        expect(r.outputs).toMatchObject({
          image: `${session.engine.localRegistry}/${repo(component)}`,
          tag,
          ref: `${session.engine.localRegistry}/${repo(component)}:${tag}`,
          digest: answer.digest,
          platform,
          arch,
          'cache-scope': `${component}-${arch}`,
          pushed: 'true'
        })
        expect(JSON.parse(r.outputs.metadata)['containerimage.digest']).toBe(answer.digest)
        expect(await imageConfigPlatform(repo(component), tag)).toBe(platform)
        // the RUN step really executed on that architecture (under QEMU for arm64)
        expect((await readImageFile(repo(component), tag, '/etc/brokkr/uname'))?.trim()).toBe(machine)
        expect(r.summary).toContain(`Brokkr build ${component} ${platform}`)
      }
    )

    it.each(['agent', 'broker'])('2. assembles the %s index with exactly amd64 and arm64, annotated for GHCR', async (component) => {
      const r = await run({
        mode: 'manifest',
        component,
        sha,
        inputs: { annotations: 'org.opencontainers.image.vendor=Colliery\norg.opencontainers.image.title=Brokkr ' + component }
      })
      expect(r.main.code).toBe(0)
      // what GHCR shows for a multi-arch package, read from the index as a registry client reads it
      const annotations = {
        'org.opencontainers.image.source': 'https://github.com/colliery-io/brokkr',
        'org.opencontainers.image.revision': sha,
        'org.opencontainers.image.created': '2026-11-20T12:00:00.000Z',
        'org.opencontainers.image.title': `Brokkr ${component}`,
        'org.opencontainers.image.version': 'main',
        'org.opencontainers.image.description': 'Brokkr: a broker and agents that run work close to the data',
        'org.opencontainers.image.licenses': 'Apache-2.0',
        'org.opencontainers.image.vendor': 'Colliery'
      }
      for (const tag of [sha, 'main']) {
        const index = await registryManifest(repo(component), tag)
        expect(index.status).toBe(200)
        expect(index.digest).toBe(r.outputs.digest)
        expect(index.manifest.annotations).toEqual(annotations)
        const entries = index.manifest.manifests.filter((m: any) => m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest')
        const platforms = entries.map((m: any) => `${m.platform.os}/${m.platform.architecture}`).sort()
        expect(platforms).toEqual(['linux/amd64', 'linux/arm64'])
        for (const entry of entries) expect(entry.annotations).toEqual(annotations)
        for (const attestation of index.manifest.manifests.filter((m: any) => !entries.includes(m))) {
          expect(attestation.annotations['org.opencontainers.image.source']).toBeUndefined()
        }
      }
      expect(r.outputs.platforms).toBe('linux/amd64,linux/arm64')
      expect(r.outputs.tags).toBe(`${sha},main`)
      expect(JSON.parse(r.outputs.sources)).toEqual({
        'linux/amd64': built[`${component}-amd64`].outputs.digest,
        'linux/arm64': built[`${component}-arm64`].outputs.digest
      })
    })

    it('3. rebuilds warm from the gha cache after a prune, each component-arch in its own scope', async () => {
      await prune()
      for (const component of ['agent', 'broker']) {
        for (const [platform, arch] of ARCHES) {
          double().clearLog()
          const r = await run({ component, platform, sha })
          expect(r.main.code).toBe(0)
          const report = cacheReport(r)
          expect(report.steps).toBeGreaterThanOrEqual(3)
          expect(report.uncached).toEqual([])
          const use = cacheUse()
          const indexKeys = use.keysRead.filter((k) => k.startsWith('index-'))
          expect(indexKeys.length).toBeGreaterThan(0)
          expect(use.blobHits).toBeGreaterThan(0)
          expect(indexKeys.filter((k: string) => !k.startsWith(`index-${component}-${arch}-`))).toEqual([])
        }
      }
    })
  })

  describe('pull requests and the post step', () => {
    it('4. a pull_request build runs without login and pushes nothing', async () => {
      const before = await allTags()
      const dockerConfig = makeDockerConfig()
      const r = await run({ component: 'agent', platform: 'linux/arm64', sha: newSha(), event: 'pull_request', dockerConfig })
      expect(r.main.code).toBe(0)
      expect(r.outputs.pushed).toBe('false')
      expect(r.main.stdout).not.toMatch(/docker login/)
      expect(authsIn(dockerConfig)).toEqual([])
      expect(await allTags()).toEqual(before)
    })

    it('5. the post step logs out, and the docker driver creates and removes no builder', async () => {
      const dockerConfig = makeDockerConfig()
      const env = dockerEnv(dockerConfig)
      const buildersBefore = (await docker(['buildx', 'ls'], { env })).stdout
      const r = await run({ component: 'broker', platform: 'linux/amd64', sha: newSha(), dockerConfig })
      expect(r.main.code).toBe(0)
      expect(JSON.parse(r.state.brokkr)).toMatchObject({ logins: [session.engine.localRegistry] })
      expect(r.post?.code).toBe(0)
      expect(authsIn(dockerConfig)).toEqual([])
      expect((await docker(['buildx', 'ls'], { env })).stdout).toBe(buildersBefore)
    })
  })

  describe('Node 24, the runtime GitHub uses for node20 actions', () => {
    it('6. builds both arches and the index with the bundle run by Node 24', async () => {
      expect(execFileSync(NODE24, ['--version']).toString()).toMatch(/^v24\./)
      const sha = newSha()
      for (const [platform] of ARCHES) {
        const r = await run({ component: 'agent', platform, sha, node: NODE24 })
        expect(r.main.code).toBe(0)
        expect(r.post?.code).toBe(0)
      }
      const m = await run({ mode: 'manifest', component: 'agent', sha, node: NODE24 })
      expect(m.main.code).toBe(0)
      expect(m.outputs.platforms).toBe('linux/amd64,linux/arm64')
      expect((await registryManifest(repo('agent'), sha)).digest).toBe(m.outputs.digest)
    })
  })

  describe('other cache backends', () => {
    it('7a. cache: registry gives a warm rebuild', async () => {
      const sha = newSha()
      const first = await run({ component: 'broker', platform: 'linux/arm64', sha, inputs: { cache: 'registry' } })
      expect(first.main.code).toBe(0)
      expect((await registryManifest(repo('broker'), 'buildcache-arm64')).status).toBe(200)
      await prune()
      const warm = await run({ component: 'broker', platform: 'linux/arm64', sha, inputs: { cache: 'registry' } })
      expect(warm.main.code).toBe(0)
      expect(cacheReport(warm).uncached).toEqual([])
    })

    it('7b. cache: local is saved in the post step and restored through the Actions cache', async () => {
      // like a runner, RUNNER_TEMP has the same path in every job (the cache version hashes the path)
      const runnerTemp = mkdtempSync(join(tmpdir(), 'brokkr-runner-temp-'))
      const sha = newSha()
      double().clearLog()
      const first = await run({ component: 'agent', platform: 'linux/amd64', sha, inputs: { cache: 'local' }, env: { RUNNER_TEMP: runnerTemp } })
      expect(first.main.code).toBe(0)
      expect(first.post?.log ?? first.log).toMatch(/Saved local build cache as brokkr-buildx-agent-amd64-/)
      const saves = cacheUse().keysSaved.filter((k) => k.startsWith('brokkr-buildx-agent-amd64-'))
      expect(saves).toHaveLength(1)

      rmSync(join(runnerTemp, 'brokkr-build-cache'), { recursive: true, force: true })
      await prune()
      double().clearLog()
      const warm = await run({ component: 'agent', platform: 'linux/amd64', sha, inputs: { cache: 'local' }, env: { RUNNER_TEMP: runnerTemp } })
      expect(warm.main.code).toBe(0)
      expect(warm.main.stdout).toMatch(/Restored local build cache brokkr-buildx-agent-amd64-/)
      expect(cacheUse().restoreHits).toBeGreaterThan(0)
      expect(cacheReport(warm).uncached).toEqual([])
      rmSync(runnerTemp, { recursive: true, force: true })
    })
  })

  describe('SBOM and provenance', () => {
    it("9. attaches our generator's SPDX document and provenance to both platforms, and the index carries both", async () => {
      const generator = session.engine.sbomGenerator
      if (!generator) throw new Error('the stack has no SBOM generator image (stack.sh up writes BROKKR_SBOM_GENERATOR)')
      const sha = newSha()
      for (const [platform] of ARCHES) {
        const r = await run({ component: 'agent', platform, sha, inputs: { sbom: `generator=${generator}`, provenance: 'mode=max' } })
        expect(r.main.code).toBe(0)
        expect(r.main.stdout).toContain(`--attest type=sbom,generator=${generator}`)
        expect(`${r.main.stdout}\n${r.main.stderr}`).toContain(`generating sbom using ${generator}`)
      }
      const m = await run({ mode: 'manifest', component: 'agent', sha })
      expect(m.main.code).toBe(0)
      // manifest mode checked both attestations and lists them per platform
      for (const [platform] of ARCHES) {
        const attached = m.summary.split('\n').find((line: string) => line.includes(`attached ${platform}`)) ?? ''
        expect(attached).toContain('provenance (SLSA v0.2, mode=max)')
        expect(attached).toContain('SBOM (SPDX)')
      }
      // read back by a client that is not ours: the current buildx's imagetools
      const reader = stackDockerEnv(stackDockerConfig({ engine: 'current', auth: true }), { engine: 'current' })
      const inspect = async (format: string) =>
        JSON.parse(
          (await docker(['buildx', 'imagetools', 'inspect', `${session.engine.localRegistry}/${repo('agent')}:${sha}`, '--format', format], { env: reader }))
            .stdout
        )
      const sbom = await inspect('{{json .SBOM}}')
      const provenance = await inspect('{{json .Provenance}}')
      expect(Object.keys(sbom).sort()).toEqual(['linux/amd64', 'linux/arm64'])
      expect(Object.keys(provenance).sort()).toEqual(['linux/amd64', 'linux/arm64'])
      for (const [platform] of ARCHES) {
        const spdx = sbom[platform].SPDX
        expect(spdx).toMatchObject({ spdxVersion: 'SPDX-2.3', dataLicense: 'CC0-1.0', SPDXID: 'SPDXRef-DOCUMENT' })
        expect(spdx.creationInfo.creators).toContain('Tool: brokkr-e2e-sbom-generator-1')
        // the files of that platform's image, kubectl stub and uname included
        const files = spdx.files.map((f: any) => f.fileName)
        expect(files).toEqual(expect.arrayContaining(['./bin/busybox', './usr/local/bin/kubectl', './etc/brokkr/uname']))
        expect(provenance[platform].SLSA).toMatchObject({ buildType: expect.any(String), invocation: expect.any(Object) })
      }
      // each platform's SBOM names its own uname file: the documents are not one copied twice
      const uname = (platform: string) => sbom[platform].SPDX.files.find((f: any) => f.fileName === './etc/brokkr/uname').checksums[0].checksumValue
      expect(uname('linux/amd64')).not.toBe(uname('linux/arm64'))
    })
  })

  describe('dry-run', () => {
    it('8. prints the plan and exact commands in both modes and changes nothing', async () => {
      const dockerConfig = makeDockerConfig()
      const env = dockerEnv(dockerConfig)
      const configBefore = readFileSync(join(dockerConfig, 'config.json'), 'utf8')
      const tagsBefore = await allTags()
      const buildersBefore = (await docker(['buildx', 'ls'], { env })).stdout
      const sha = newSha()
      const build = await run({ component: 'agent', platform: 'linux/arm64', sha, dockerConfig, inputs: { 'dry-run': 'true' } })
      expect(build.main.code).toBe(0)
      expect(build.main.stdout).toMatch(/\[dry-run\] docker login \S+ --username brokkr --password-stdin/)
      expect(build.main.stdout).toMatch(
        new RegExp(`\\[dry-run\\] docker buildx build --builder default --platform linux/arm64 .*--tag \\S+:${sha}-arm64 .*--push \\.`)
      )
      const manifest = await run({ mode: 'manifest', component: 'agent', sha, dockerConfig, inputs: { 'dry-run': 'true' } })
      expect(manifest.main.code).toBe(0)
      expect(manifest.main.stdout).toMatch(new RegExp(`\\[dry-run\\] push the index of those arch images as \\S+:${sha}\\n`))
      expect(manifest.main.stdout).toMatch(/\[dry-run\] push the index of those arch images as \S+:main\n/)
      expect(manifest.summary).toContain('Dry run')
      expect(readFileSync(join(dockerConfig, 'config.json'), 'utf8')).toBe(configBefore)
      expect(await allTags()).toEqual(tagsBefore)
      expect((await docker(['buildx', 'ls'], { env })).stdout).toBe(buildersBefore)
    })
  })
})
