/**
 * Issue 16: a fetch of a cached layer from the gha cache must take about as long as its transfer.
 * The pipeline benchmark once lost 26-54 s per job in the final stage's `COPY --from=deps`: BuildKit
 * fetches that layer lazily from the cache service, and the request sat in TCP retransmissions
 * because the stack's bridge changed its MAC address when another builder container left (fixed
 * in stack.sh by pinning the bridge's MAC). This is the check that keeps such a stall from coming
 * back unseen: the bundled action builds amd64 and arm64 at once with fresh docker-container
 * builders, as a matrix does, after a source change that makes the final stage run, and every
 * cached-layer fetch must finish within 10 s (on this machine it takes well under 1 s).
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cachedLayerFetches } from '../support/build-log.mjs'
import { mintRuntimeToken } from './support/cache-double.mjs'
import { startCacheV2Double } from './support/cache-v2-double.mjs'
import { resultExitCode, runAction } from './support/harness.mjs'
import { engineEnv, forwardToBridge, makeDockerConfig, readStackEnvSync } from './support/stack.mjs'

type Result = Awaited<ReturnType<typeof runAction>>
const ENGINE = 'current' as const
const env = readStackEnvSync()
const engine = engineEnv(env, ENGINE)
const title = `[engine: ${ENGINE}, Docker ${engine.dockerVersion}, buildx ${engine.buildxVersion}, BuildKit ${engine.buildkitVersion ?? '?'}]`
const REPO = `fetch-${randomBytes(3).toString('hex')}/brokkr-broker`
const LIMIT_S = 10
const VENDOR_MIB = 12

// The pipeline benchmark's shape, smaller: a dependency stage with a 12 MiB layer, an application
// stage on the sources, and a final stage that copies from both and runs a step (so a source change
// makes BuildKit fetch the cached dependency layer to build on it).
const DOCKERFILE = `ARG BASE_IMAGE
FROM \${BASE_IMAGE} AS deps
COPY deps.lock /deps/deps.lock
RUN head -c ${VENDOR_MIB * 1048576} /dev/urandom > /deps/vendor.bin
FROM deps AS app
COPY src/ /src/
RUN cp /src/* /deps/ && sha256sum /deps/vendor.bin > /app.sum
FROM \${BASE_IMAGE}
COPY --from=deps /deps/vendor.bin /opt/brokkr/deps/
COPY --from=app /app.sum /opt/brokkr/
RUN uname -m > /opt/brokkr/uname
`

const workspace = mkdtempSync(join(tmpdir(), 'brokkr-fetch-'))
mkdirSync(join(workspace, 'docker'))
mkdirSync(join(workspace, 'src'))
writeFileSync(join(workspace, 'docker', 'Dockerfile.broker'), DOCKERFILE)
writeFileSync(join(workspace, 'deps.lock'), 'deps v1\n')
const changeSources = (n: number) => writeFileSync(join(workspace, 'src', 'main.txt'), `revision ${n}\n`)
changeSources(0)

let cache: Awaited<ReturnType<typeof startCacheV2Double>>
let forward: Awaited<ReturnType<typeof forwardToBridge>>

beforeAll(async () => {
  cache = await startCacheV2Double({ token: mintRuntimeToken({ scope: 'refs/heads/main' }) })
  // BuildKit runs in a container: it reaches the double through the bridge
  forward = await forwardToBridge(Number(new URL(cache.url).port))
}, 120_000)

afterAll(async () => {
  await forward?.stop()
  await cache?.close()
  rmSync(workspace, { recursive: true, force: true })
})

/** One matrix job of the bundled action: a fresh DOCKER_CONFIG and builder, defaults otherwise. */
function job(platform: string): Promise<Result> {
  return runAction({
    engine: ENGINE,
    cwd: workspace,
    event: 'push',
    sha: randomBytes(20).toString('hex'),
    // a fresh runner; new builders treat the stack's bridge registries as plain http
    dockerConfig: makeDockerConfig({ engine: ENGINE, buildkitd: true }),
    cache: { url: `http://${forward.address}/`, token: cache.token, version: 2 },
    secrets: [env.BROKKR_REGISTRY_PASSWORD],
    inputs: {
      mode: 'build',
      component: 'broker',
      platform,
      registry: engine.registry,
      image: `${engine.registry}/${REPO}`,
      username: env.BROKKR_REGISTRY_USER,
      password: env.BROKKR_REGISTRY_PASSWORD,
      'build-args': `BASE_IMAGE=${engine.baseImage}`,
      builder: `brokkr-fetch-${randomBytes(3).toString('hex')}`
    }
  })
}

/** Both arches at once, as a matrix runs them; each result's log checked to have succeeded. */
async function matrix(): Promise<Result[]> {
  const results = await Promise.all(['linux/amd64', 'linux/arm64'].map((p) => job(p)))
  for (const r of results) {
    r.cleanup()
    if (resultExitCode(r) !== 0) console.log(`build failed:\n${r.log}`)
    expect(resultExitCode(r)).toBe(0)
  }
  return results
}

describe(`fetches of cached layers from the gha cache ${title}`, () => {
  it('warms the cache: both arches built and exported', async () => {
    await matrix()
    expect(cache.requests.filter((q: any) => q.method === 'FinalizeCacheEntryUpload' && q.ok).length).toBeGreaterThan(0)
  }, 600_000)

  it(`after a source change every cached-layer fetch takes under ${LIMIT_S} s (two rounds, both arches at once)`, async () => {
    const fetches: { round: number; log: string; step: string; seconds: number; bytes: number }[] = []
    for (const round of [1, 2]) {
      changeSources(round)
      const results = await matrix()
      for (const r of results) {
        const mine = cachedLayerFetches(r.log)
        // the check measures something: each job fetched the big dependency layer from the cache
        expect(mine.some((f) => f.bytes >= VENDOR_MIB * 1e6)).toBe(true)
        for (const f of mine) fetches.push({ round, log: r.log, step: f.title, seconds: f.seconds, bytes: f.bytes })
      }
    }
    const slowest = fetches.reduce((a, f) => (f.seconds > a.seconds ? f : a))
    if (slowest.seconds >= LIMIT_S) console.log(`slowest cached-layer fetch: ${slowest.seconds} s in ${slowest.step} (round ${slowest.round})\n${slowest.log}`)
    expect({ step: slowest.step, seconds: slowest.seconds, under: slowest.seconds < LIMIT_S }).toEqual({
      step: slowest.step,
      seconds: slowest.seconds,
      under: true
    })
  }, 900_000)
})
