import { readFileSync } from 'node:fs'
import { jest } from '@jest/globals'
import { BuildProgress, CacheReads, cacheProblem, cacheRateLimited, classifyBuildFailure, refusedLegacyCacheProtocol } from '../../src/buildx/buildkit-log.js'
import { boundCache, cacheWarnings } from '../../src/buildx/cache.js'

describe('build failure classification', () => {
  const solveFailure = [
    '#7 [build 2/3] RUN cargo build --release',
    '#7 ERROR: process "/bin/sh -c cargo build --release" did not complete successfully: exit code: 101',
    'ERROR: failed to solve: process "/bin/sh -c cargo build --release" did not complete successfully: exit code: 101'
  ].join('\n')
  const pushFailure = [
    '#11 exporting to image',
    '#11 exporting layers done',
    '#11 pushing layers',
    '#11 ERROR: not found',
    '------',
    ' > exporting to image:',
    '------',
    'ERROR: failed to solve: not found'
  ].join('\n')
  const dockerPushLag = ['#12 pushing 127.0.0.1:5000/a:b-arm64 with docker', '#12 ERROR: manifest unknown', 'ERROR: failed to solve: manifest unknown'].join(
    '\n'
  )
  const daemonReadBack = [
    '#0 building with "default" instance using docker driver',
    '#10 exporting to image',
    '#10 DONE 0.2s',
    '#11 pushing 127.0.0.1:5000/a:b-arm64 with docker',
    '#11 pushing layer 9c6ab6f4e2a1 done',
    'ERROR: Error response from daemon: manifest unknown: manifest unknown'
  ].join('\n')
  const refused = [
    '#11 exporting to image',
    '#11 ERROR: failed to push 127.0.0.1:5000/a:b: unexpected status: 401 Unauthorized',
    'ERROR: failed to solve: unexpected status: 401 Unauthorized'
  ].join('\n')

  const last = (log: string) =>
    log
      .split('\n')
      .filter((l) => /ERROR/.test(l))
      .slice(-2)
      .join(' | ')
  it.each([
    ['a RUN step failing', solveFailure, 'fatal'],
    ['a RUN step whose command mentions a timeout or a 403', solveFailure.replace(/cargo build --release/g, 'timeout 60 curl -f https://x/403'), 'fatal'],
    ['a registry error while pushing', pushFailure, 'transient'],
    ["dockerd's read-back of a fresh push", dockerPushLag, 'transient'],
    ["dockerd's push failing without a step error", daemonReadBack, 'transient'],
    ["dockerd's read-back after every step was done", daemonReadBack.replace('#11 pushing layer 9c6ab6f4e2a1 done', '#11 DONE 0.1s'), 'transient'],
    ['a refused push', refused, 'auth']
  ])('%s is %s', (_name, log, outcome) => expect(classifyBuildFailure(log, last(log))).toBe(outcome))
})

describe('cache problems in a build log', () => {
  it('names the cache step that failed', () => {
    const log = [
      '#4 importing cache manifest from gha:123',
      '#4 ERROR: failed to parse error response 500: Internal Server Error',
      '#9 [2/2] RUN make',
      '#9 DONE 0.3s',
      '#12 exporting cache to GitHub Actions Cache',
      '#12 ERROR: failed to reserve cache: 500'
    ].join('\n')
    expect(cacheProblem(log)).toBe('importing cache manifest from gha:123: failed to parse error response 500: Internal Server Error')
  })
  it('is quiet when the cache worked', () => {
    expect(cacheProblem('#4 importing cache manifest from gha:1\n#4 DONE 0.1s')).toBeUndefined()
  })
})

describe('build progress', () => {
  const feed = (lines: string[]) => {
    const progress = new BuildProgress()
    for (const line of lines) progress.observe(line)
    return progress
  }
  it('sees the image written before cache export starts', () => {
    const progress = feed(['#0 building with "default" instance using docker driver', '#9 exporting to image', '#9 pushing layers 0.1s done', '#9 DONE 0.4s'])
    expect(progress.outputWritten).toBe(true)
    expect(progress.cacheExportStarted).toBe(false)
    // what BuildKit 0.25 prints for the gha backend
    progress.observe('#12 exporting to GitHub Actions Cache')
    expect(progress.cacheExportStarted).toBe(true)
    expect(progress.outputWritten).toBe(true)
    for (const title of ['#13 exporting cache to registry', '#13 exporting cache to client directory']) expect(feed([title]).cacheExportStarted).toBe(true)
  })
  it('knows an output step still running, or none at all', () => {
    expect(feed(['#9 exporting to oci image format', '#9 exporting layers']).outputWritten).toBe(false)
    expect(feed(['#4 [build 1/2] RUN true', '#4 DONE 0.1s']).outputWritten).toBe(false)
    expect(feed(['#12 preparing build cache for export', '#12 writing layer sha256:1']).cacheExportStarted).toBe(true)
  })
})

describe('legacy cache protocol refusal', () => {
  it('recognises what the switched-off v1 service answers', () => {
    expect(refusedLegacyCacheProtocol('error: failed to reserve cache: This legacy service is shutting down, effective April 15, 2025.')).toBe(true)
    expect(refusedLegacyCacheProtocol('twirp error bad_route: no handler for path')).toBe(true)
    expect(refusedLegacyCacheProtocol('#10 ERROR: failed to push: 503 Service Unavailable')).toBe(false)
  })
})

describe('a cache service at its rate limit', () => {
  // what BuildKit v0.25 (Docker 28.5) logged when the v2 cache double answered CreateCacheEntry 429
  // (resource_exhausted, Retry-After) and the action stopped the export after cache-timeout
  const log = readFileSync(new URL('../fixtures/build-logs/cache-rate-limited.txt', import.meta.url), 'utf8')
  const gha = { backend: 'gha', status: 'on', from: ['type=gha'], to: ['type=gha'], note: '' } as const

  it('is recognised, and said in one warning that names the limit and what to do', () => {
    expect(cacheRateLimited(log)).toBe(true)
    expect(cacheRateLimited(log.replace('resource_exhausted', 'internal'))).toBe(false)
    const warnings = cacheWarnings(log, { ...gha, from: [...gha.from], to: [...gha.to] }, true, 20_000)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/at most 200 cache entries a minute .*stopped after cache-timeout \(20\.0 s\).*cache-mode: min, or fewer cache scopes/)
  })
})

// A real log (docker-container builder, current engine): a warm gha scope, the builder's cache
// pruned, then every blob download of the cache service answering 503. BuildKit prints the cached
// step's two layers at 0 B every 5 s and never gives up.
const stalledRead = readFileSync(new URL('../fixtures/build-logs/stalled-cache-read.txt', import.meta.url), 'utf8').split('\n')
const ordinaryRead = readFileSync(new URL('../fixtures/build-logs/lazy-fetch.txt', import.meta.url), 'utf8').split('\n')
/** The time BuildKit printed on a progress line (`... 10.4s`), in ms, or the last one seen. */
const feed = (reads: CacheReads, lines: string[]) => {
  let now = 0
  for (const line of lines) {
    const at = / (\d+\.\d)s(?: done)?$/.exec(line)
    if (at && /sha256:/.test(line)) now = Math.max(now, Number(at[1]) * 1000)
    reads.observe(line, now)
  }
  return now
}

describe('cache reads in a build log', () => {
  it('sees a cached step whose layers make no progress, and names it', () => {
    const reads = new CacheReads()
    const last = feed(reads, stalledRead)
    expect(last).toBe(35_900)
    expect(reads.reading).toBe('[2/3] RUN head -c 300000 /dev/urandom > /cached.bin && echo "108b9e48" > /unique')
    // 0 B at 0.2 s and still 0 B at 35.9 s: idle since the first line
    expect(reads.idleFor(last)).toBe(35_700)
  })

  it('sees nothing open once an ordinary lazy fetch is done', () => {
    const reads = new CacheReads()
    feed(reads, ordinaryRead)
    expect(reads.reading).toBeUndefined()
    expect(reads.idleFor(60_000)).toBeUndefined()
  })

  it('counts growing bytes as progress, and a base image pull as no cache read', () => {
    const reads = new CacheReads()
    const blob = 'sha256:' + 'a'.repeat(64)
    reads.observe('#5 [1/3] FROM registry/base:1', 0)
    reads.observe(`#5 ${blob} 0B / 1MB 0.2s`, 0)
    expect(reads.reading).toBeUndefined()
    reads.observe('#6 [2/3] RUN make', 0)
    reads.observe(`#6 ${blob} 0B / 1MB 0.2s`, 1000)
    reads.observe(`#6 ${blob} 0B / 1MB 5.2s`, 6000)
    expect(reads.idleFor(6000)).toBe(5000)
    reads.observe(`#6 ${blob} 512kB / 1MB 10.2s`, 11_000)
    expect(reads.idleFor(11_000)).toBe(0)
    reads.observe(`#6 ${blob} 1MB / 1MB 11.0s done`, 12_000)
    expect(reads.reading).toBeUndefined()
  })

  it('counts extraction as progress, and opens no read for it, a frontend image or a named context', () => {
    const reads = new CacheReads()
    const blob = 'sha256:' + 'c'.repeat(64)
    reads.observe('#6 [2/3] RUN make', 0)
    reads.observe(`#6 ${blob} 1MB / 1MB 0.2s done`, 1000)
    reads.observe(`#6 extracting ${blob} 0.1s`, 900_000)
    expect(reads.idleFor(900_000)).toBeUndefined()
    reads.observe('#7 [3/3] RUN unpack', 900_000)
    reads.observe(`#7 ${blob} 0B / 9GB 0.2s`, 900_000)
    reads.observe(`#7 extracting ${blob} 30.0s`, 930_000)
    expect(reads.idleFor(930_000)).toBe(0)
    reads.observe('#1 docker-image://docker.io/docker/dockerfile:1', 0)
    reads.observe(`#1 ${blob} 0B / 1MB 0.2s`, 0)
    reads.observe('#2 [context shared] load .dockerignore', 0)
    reads.observe(`#2 ${blob} 0B / 1MB 0.2s`, 0)
    expect(reads.reading).toBe('[3/3] RUN unpack')
  })

  it('times the import of the cache manifest from its first line to its end', () => {
    const reads = new CacheReads()
    reads.observe('#5 importing cache manifest from gha:16997502781593405247', 2000)
    expect(reads.reading).toBe('importing cache manifest from gha:16997502781593405247')
    expect(reads.idleFor(92_000)).toBe(90_000)
    reads.observe('#5 ERROR: failed to fetch', 93_000)
    expect(reads.idleFor(93_000)).toBeUndefined()
  })
})

describe('the bound on the cache', () => {
  beforeEach(() => jest.useFakeTimers())
  afterEach(() => jest.useRealTimers())

  it('stops a build whose cache read makes no progress for cache-timeout, and says which read', () => {
    const bound = boundCache(20_000, { writesResult: true, boundReads: true })
    const stop = jest.fn()
    bound.onLine('#5 importing cache manifest from gha:1', stop)
    jest.advanceTimersByTime(19_999)
    expect(stop).not.toHaveBeenCalled()
    jest.advanceTimersByTime(1)
    expect(stop).toHaveBeenCalledTimes(1)
    expect(bound.readStalled).toBe('importing cache manifest from gha:1')
    bound.dispose()
  })

  it('lets a slow read go on while its bytes grow, and a build with no cache read run for ever', () => {
    const bound = boundCache(20_000, { writesResult: true, boundReads: true })
    const stop = jest.fn()
    const blob = 'sha256:' + 'b'.repeat(64)
    bound.onLine('#6 [2/3] RUN make', stop)
    for (let i = 1; i <= 10; i++) {
      bound.onLine(`#6 ${blob} ${i}MB / 100MB ${i * 15}.0s`, stop)
      jest.advanceTimersByTime(15_000)
    }
    bound.onLine(`#6 ${blob} 100MB / 100MB 160.0s done`, stop)
    bound.onLine('#6 DONE 160.0s', stop)
    bound.onLine('#7 [3/3] RUN cargo build --release', stop)
    jest.advanceTimersByTime(3_600_000)
    expect(stop).not.toHaveBeenCalled()
    expect(bound.readStalled).toBeUndefined()
    bound.dispose()
  })

  it('does not bound the reads of a build that reads no cache (its stall is not the cache)', () => {
    const bound = boundCache(20_000, { writesResult: true, boundReads: false })
    const stop = jest.fn()
    bound.onLine('#5 importing cache manifest from gha:1', stop)
    jest.advanceTimersByTime(3_600_000)
    expect(stop).not.toHaveBeenCalled()
    bound.dispose()
  })

  it('is off with cache-timeout 0', () => {
    const bound = boundCache(0, { writesResult: true, boundReads: true })
    const stop = jest.fn()
    bound.onLine('#5 importing cache manifest from gha:1', stop)
    jest.advanceTimersByTime(3_600_000)
    expect(stop).not.toHaveBeenCalled()
    bound.dispose()
  })
})
