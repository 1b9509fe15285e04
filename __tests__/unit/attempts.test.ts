import { CHANGE_NOTES, firstAttempt, nextAttempt, reachableAttempts, shapeOf, withoutCacheRead, type Attempt } from '../../src/buildx/attempts.js'

const layoutDir = '/tmp/work/oci'
const pushing = firstAttempt(true, layoutDir)
/** A plain-progress log whose push step failed (the registry's fault, worth another try). */
const pushLog = '#12 exporting to image\n#12 pushing layers\n#12 ERROR: failed to push: 502 Bad Gateway'
const pushError = 'ERROR: failed to push localhost:5000/a:s-amd64: unexpected status: 502 Bad Gateway'

describe('build attempts', () => {
  it('starts with BuildKit pushing and exporting cache, or with no output when not pushing', () => {
    expect(pushing).toEqual({ output: { kind: 'push' }, exportCache: true, readCache: true, layoutAllowed: true, layoutDir })
    expect(firstAttempt(false, layoutDir).output).toEqual({ kind: 'none' })
  })

  it('exports an OCI layout after BuildKit failed while pushing', () => {
    expect(nextAttempt(pushing, { log: pushLog, errorText: pushError })).toEqual({
      ...pushing,
      output: { kind: 'layout', dir: layoutDir },
      change: 'layout'
    })
    expect(CHANGE_NOTES.layout).toBe('exporting an OCI layout to push request by request')
  })

  it('does not change the previous attempt (pure)', () => {
    const before = JSON.stringify(pushing)
    nextAttempt(pushing, { log: pushLog, errorText: pushError })
    expect(JSON.stringify(pushing)).toBe(before)
  })

  it('drops --cache-to when the engine cannot export cache', () => {
    const next = nextAttempt(pushing, { log: '', errorText: 'ERROR: cache export is not supported for the docker driver' })
    expect(next).toEqual({ ...pushing, exportCache: false, change: 'no-cache-export' })
  })

  it('goes back to BuildKit pushing, for good, when the engine cannot export a layout', () => {
    const layout: Attempt = { ...pushing, output: { kind: 'layout', dir: layoutDir } }
    const next = nextAttempt(layout, { log: '', errorText: 'ERROR: OCI exporter is not supported for the docker driver' })
    expect(next).toEqual({ ...pushing, layoutAllowed: false, change: 'push-again' })
    // a later push failure then retries the push as it is rather than asking for a layout again
    expect(nextAttempt(next as Attempt, { log: pushLog, errorText: pushError })).toEqual({ ...pushing, layoutAllowed: false, change: 'again' })
  })

  it('retries a transient failure as it is', () => {
    const next = nextAttempt(firstAttempt(false, layoutDir), { log: '', errorText: 'ERROR: failed to fetch: connection reset by peer' })
    expect(next).toEqual({ ...firstAttempt(false, layoutDir), change: 'again' })
  })

  it('ends on a refused push or a failing Dockerfile step', () => {
    expect(nextAttempt(pushing, { log: pushLog, errorText: 'ERROR: failed to push: 403 Forbidden' })).toEqual({ final: 'auth' })
    const failedStep = 'ERROR: process "/bin/sh -c cargo build" did not complete successfully: exit code: 101'
    expect(nextAttempt(pushing, { log: '#9 [build 3/5] RUN cargo build\n#9 ERROR: exit code: 101', errorText: failedStep })).toEqual({ final: 'fatal' })
  })

  it('reads the cache no more once a read stalled, and keeps that through later attempts', () => {
    const cold = withoutCacheRead(pushing)
    expect(cold).toEqual({ ...pushing, readCache: false, change: 'no-cache-read' })
    expect(shapeOf(cold)).toBe('push, no cache read')
    expect(nextAttempt(cold, { log: pushLog, errorText: pushError })).toMatchObject({ output: { kind: 'layout' }, readCache: false })
  })

  it('lists every shape a run can reach, the cache-less ones only when there is a cache to read', () => {
    expect(reachableAttempts(pushing, true).map(shapeOf)).toEqual([
      'push',
      'layout',
      'push, no cache export',
      'layout, no cache export',
      'push, no cache read',
      'layout, no cache read',
      'push, no cache export, no cache read',
      'layout, no cache export, no cache read'
    ])
    expect(reachableAttempts(firstAttempt(false, layoutDir), false).map(shapeOf)).toEqual(['none', 'none, no cache export'])
  })
})
