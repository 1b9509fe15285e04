import { parseDuration } from '../../src/model/duration.js'
import { classifyDockerOutput, classifyStatus, ClassifiedError, parseRetryAfter } from '../../src/model/errors.js'
import { backoffDelay, retryDelay, RetryPolicy, waitDelay, type RetryPolicyOptions } from '../../src/registry/retry.js'

describe('status classification', () => {
  it.each([
    [404, 'absent'],
    [401, 'auth'],
    [403, 'auth'],
    [408, 'transient'],
    [429, 'transient'],
    [500, 'transient'],
    [502, 'transient'],
    [503, 'transient'],
    [504, 'transient'],
    [400, 'fatal'],
    [405, 'fatal']
  ])('%i is %s', (status, outcome) => expect(classifyStatus(status)).toBe(outcome))
})

describe('docker output classification', () => {
  it.each([
    [
      'ERROR: failed to push 127.0.0.1:5000/a:b: unexpected status from PUT request to http://127.0.0.1:5000/v2/a/manifests/b: 503 Service Unavailable',
      'transient'
    ],
    ['ERROR: failed to solve: failed to push: 429 Too Many Requests', 'transient'],
    ['ERROR: failed to do request: Head "http://127.0.0.1:5000/v2/": read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer', 'transient'],
    ['ERROR: failed to copy: httpReadSeeker: failed open: unexpected EOF', 'transient'],
    ['Error response from daemon: Get "http://127.0.0.1:5000/v2/": unauthorized: authentication required', 'auth'],
    ['ERROR: failed to push ghcr.io/a/b: denied: permission_denied: write_package', 'auth'],
    ['ERROR: 127.0.0.1:5000/a:b: not found', 'fatal'],
    ['ERROR: failed to solve: process "/bin/sh -c cargo build" did not complete successfully: exit code: 101', 'fatal']
  ])('%s -> %s', (text, outcome) => expect(classifyDockerOutput(text)).toBe(outcome))
})

describe('backoff', () => {
  const backoff = { baseMs: 1000, capMs: 30_000 }
  it('doubles with jitter and stays under the cap', () => {
    expect(backoffDelay(0, backoff, () => 0)).toBe(500)
    expect(backoffDelay(0, backoff, () => 1)).toBe(1000)
    expect(backoffDelay(3, backoff, () => 1)).toBe(8000)
    expect(backoffDelay(20, backoff, () => 1)).toBe(30_000)
  })
  it('waits at least Retry-After, up to a ceiling, and never less than our own backoff', () => {
    expect(retryDelay(0, backoff, 7000, () => 1)).toBe(7000)
    expect(retryDelay(0, backoff, 3_600_000, () => 1)).toBe(60_000)
    expect(retryDelay(4, backoff, 1000, () => 1)).toBe(16_000)
  })
  it('reads Retry-After as seconds or a date', () => {
    expect(parseRetryAfter('3', 0)).toBe(3000)
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000)
    expect(parseRetryAfter('soon', 0)).toBeUndefined()
    expect(parseRetryAfter(null, 0)).toBeUndefined()
  })
  it('polls densely at first and thins out later', () => {
    expect(waitDelay(0, 1000, () => 1)).toBe(1000)
    expect(waitDelay(8000, 1000, () => 1)).toBe(1000)
    expect(waitDelay(120_000, 1000, () => 1)).toBe(12_000)
    expect(waitDelay(3_600_000, 1000, () => 1)).toBe(30_000)
  })
})

describe('RetryPolicy', () => {
  const policy = (retries: number, extra: Partial<RetryPolicyOptions> = {}) =>
    new RetryPolicy({ retries, backoff: { baseMs: 1, capMs: 1 }, info: () => {}, sleep: async () => {}, ...extra })
  it('retries transient failures up to the limit', async () => {
    let calls = 0
    await expect(
      policy(3).run(async () => {
        calls++
        throw new ClassifiedError('503', 'transient')
      })
    ).rejects.toThrow('503')
    expect(calls).toBe(4)
  })
  it('never retries an auth failure', async () => {
    let calls = 0
    await expect(
      policy(5).run(async () => {
        calls++
        throw new ClassifiedError('denied', 'auth')
      })
    ).rejects.toThrow('denied')
    expect(calls).toBe(1)
  })
  it('returns once a try succeeds, waiting what Retry-After asked', async () => {
    const waits: number[] = []
    let calls = 0
    const value = await policy(5, { sleep: async (ms) => void waits.push(ms) }).run(async () => {
      if (++calls < 3) throw new ClassifiedError('429', 'transient', 2000)
      return 'ok'
    })
    expect(value).toBe('ok')
    expect(waits).toEqual([2000, 2000])
  })
  it('retries absent only when asked', async () => {
    let calls = 0
    const fn = async () => {
      if (++calls === 1) throw new ClassifiedError('404', 'absent')
      return calls
    }
    await expect(policy(2).run(fn)).rejects.toThrow('404')
    calls = 0
    await expect(policy(2).run(fn, { retryOn: ['absent'] })).resolves.toBe(2)
  })
  it('announces every retry in one wording, as info or as a warning', async () => {
    const info: string[] = []
    const warning: string[] = []
    let calls = 0
    const fn = async () => {
      if (++calls < 3) throw new ClassifiedError('GET x failed: HTTP 503', 'transient')
      return calls
    }
    await policy(4, { info: (l) => info.push(l), warning: (l) => warning.push(l), random: () => 1 }).run(fn)
    calls = 0
    await policy(4, { info: (l) => info.push(l), warning: (l) => warning.push(l), random: () => 1 }).run(fn, {
      warn: true,
      note: () => 'layers come from cache'
    })
    expect(info).toEqual(['GET x failed: HTTP 503; retry 1 of 4 in 1 ms', 'GET x failed: HTTP 503; retry 2 of 4 in 1 ms'])
    expect(warning).toEqual([
      'GET x failed: HTTP 503; retry 1 of 4 in 1 ms (layers come from cache)',
      'GET x failed: HTTP 503; retry 2 of 4 in 1 ms (layers come from cache)'
    ])
    // the e2e suite counts retries in logs with this pattern (reliability.test.ts, retriesIn)
    for (const line of [...info, ...warning]) expect(line).toMatch(/; retry \d+ of \d+ in \d+ ms/)
  })
  it('raises the retries to a floor only where asked', () => {
    expect(policy(0).atLeast(3).retries).toBe(3)
    expect(policy(5).atLeast(3).retries).toBe(5)
  })
})

describe('durations', () => {
  it.each([
    ['1s', 1000],
    ['500ms', 500],
    ['2m', 120_000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    ['10', 10_000],
    ['0', 0]
  ])('%s = %i ms', (text, ms) => expect(parseDuration(text)).toBe(ms))
  it.each(['', '-1s', 'soon', '1d', 's', '1 s'])('rejects %j', (text) => expect(parseDuration(text)).toBeUndefined())
})
