import { readFileSync } from 'node:fs'
import { BuildProgress, cacheProblem, cacheRateLimited, classifyBuildFailure, refusedLegacyCacheProtocol } from '../../src/buildx/buildkit-log.js'
import { cacheWarnings } from '../../src/buildx/cache.js'

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
