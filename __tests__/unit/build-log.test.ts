import { readFileSync } from 'node:fs'
import { cachedLayerFetches, slowestCachedFetch } from '../support/build-log.mjs'

// Two real logs of the same build (agent, linux/arm64, fresh docker-container builder, --cache-from
// type=gha after a source change) from `npm run bench:lazy-fetch`: one ordinary, one where the final
// stage's lazy fetch of the 12.6 MB layer stalled for 55 s (the bridge MAC flip of issue 16).
const fixture = (name: string) => readFileSync(new URL(`../fixtures/build-logs/${name}`, import.meta.url), 'utf8')
const ordinary = fixture('lazy-fetch.txt')
const stalled = fixture('stalled-lazy-fetch.txt')

describe('cached-layer fetches read from the build log', () => {
  it('finds the lazy fetches of cached layers, FROM steps left out, whether or not BuildKit printed CACHED first', () => {
    const fetches = cachedLayerFetches(ordinary)
    expect(fetches.map((f) => f.id)).toEqual(['#13', '#16'])
    const copy = fetches.find((f) => f.id === '#16')!
    expect(copy.title).toBe('[stage-2 2/4] COPY --from=deps /deps/vendor.bin /deps/log /opt/brokkr-agent/deps/')
    expect(copy).toMatchObject({ cached: false, seconds: 0.2, transferSeconds: 0.2, bytes: 12.59e6 })
    expect(fetches.every((f) => !/FROM /.test(f.title))).toBe(true)
  })

  it('reports a stalled fetch by the step time, though its transfer took 0.2 s', () => {
    const slowest = slowestCachedFetch([ordinary, stalled])!
    expect(slowest).toMatchObject({ id: '#16', cached: true, seconds: 55, transferSeconds: 0.2, bytes: 12.59e6 })
  })

  it('finds nothing in a build that fetched no cached layer', () => {
    const cold = [
      '#5 [deps 2/3] RUN work',
      '#5 DONE 4.1s',
      '#6 [deps 1/3] FROM x',
      '#6 sha256:aa11bb22cc33dd44 1.03MB / 1.03MB 0.1s done',
      '#6 DONE 0.2s'
    ].join('\n')
    expect(cachedLayerFetches(cold)).toEqual([])
    expect(slowestCachedFetch([cold])).toBeNull()
  })
})
