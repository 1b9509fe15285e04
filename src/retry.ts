/**
 * How a failed registry or docker call is treated:
 * absent    - not there yet (read-after-write lag, sibling job still building): keep waiting
 * transient - 408, 429, 5xx, timeouts, resets: retry with backoff
 * auth      - 401, 403, denied: stop at once, retrying cannot help
 * fatal     - anything else: stop
 */
export type Outcome = 'absent' | 'transient' | 'auth' | 'fatal'

export function classifyStatus(status: number): Outcome {
  if (status === 404) return 'absent'
  if (status === 401 || status === 403) return 'auth'
  if (status === 408 || status === 425 || status === 429 || status >= 500) return 'transient'
  return 'fatal'
}

/** Classifies what a docker CLI command printed when it failed (login, build, push). */
export function classifyDockerOutput(text: string): Outcome {
  const t = text.toLowerCase()
  if (/\b(401|403)\b|unauthorized|denied|authentication required|forbidden|insufficient_scope/.test(t)) return 'auth'
  if (/manifest unknown|not found: not found|\b404\b|name_unknown|manifest_unknown/.test(t)) return 'absent'
  if (
    /\b(408|429|500|502|503|504)\b|too many requests|toomanyrequests|service unavailable|bad gateway|gateway timeout|internal server error|timeout|timed out|connection reset|connection refused|broken pipe|\beof\b|unexpected eof|tls handshake|no such host|i\/o timeout/.test(
      t
    )
  ) {
    return 'transient'
  }
  return 'fatal'
}

/** Seconds or an HTTP date, as registries send in Retry-After; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null | undefined, nowMs: number): number | undefined {
  if (!header) return undefined
  const value = header.trim()
  if (/^\d+$/.test(value)) return Number(value) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs)
}

export interface Backoff {
  baseMs: number
  capMs: number
}

/** Exponential backoff with jitter in [50%, 100%] of the step, so parallel jobs do not retry in lockstep. */
export function backoffDelay(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  const step = Math.min(backoff.capMs, backoff.baseMs * 2 ** attempt)
  return Math.round(step * (0.5 + random() / 2))
}

/**
 * A registry's Retry-After is a floor, never beyond a sane ceiling: a short one must not burn
 * the retries faster than our own backoff would.
 */
export const RETRY_AFTER_CEILING_MS = 60_000

export function retryDelay(attempt: number, backoff: Backoff, retryAfterMs: number | undefined, random?: () => number): number {
  const ours = backoffDelay(attempt, backoff, random)
  if (retryAfterMs === undefined) return ours
  return Math.min(Math.max(retryAfterMs, ours), Math.max(RETRY_AFTER_CEILING_MS, ours))
}

/** Not-found polling: about a tenth of the time waited so far, between the first backoff step and 30 s, with jitter. */
export function waitDelay(elapsedMs: number, baseMs: number, random: () => number = Math.random): number {
  const step = Math.min(30_000, Math.max(baseMs, elapsedMs / 10))
  return Math.round(step * (0.5 + random() / 2))
}

/** An error that says how it should be treated. */
export class ClassifiedError extends Error {
  constructor(
    message: string,
    readonly outcome: Outcome,
    readonly retryAfterMs?: number
  ) {
    super(message)
    this.name = 'ClassifiedError'
  }
}

export interface RetryOptions {
  retries: number
  backoff: Backoff
  sleep?: (ms: number) => Promise<void>
  random?: () => number
  /** outcomes worth another try; transient by default (reads by digest also retry absent) */
  retryOn?: Outcome[]
  /** called before each wait; `attempt` counts from 1 */
  onRetry?: (error: ClassifiedError, attempt: number, delayMs: number) => void
}

/** Retries of single registry requests, each announced through `log`; `alsoAbsent` for reads of what was just pushed. */
export function requestRetries(retries: number, backoff: Backoff, log: (line: string) => void, alsoAbsent = false): RetryOptions {
  return {
    retries,
    backoff,
    retryOn: alsoAbsent ? ['transient', 'absent'] : ['transient'],
    onRetry: (e, attempt, delay) => log(`${e.message}; retry ${attempt} in ${delay} ms`)
  }
}

/** Waits, or stops early (without error) when the signal is aborted. */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve()
    })
  })

/** Runs `fn`, retrying only transient failures, at most `retries` more times. */
export async function withRetries<T>(fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const wait = options.sleep ?? sleep
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn()
    } catch (error) {
      const retryable = options.retryOn ?? ['transient']
      if (!(error instanceof ClassifiedError) || !retryable.includes(error.outcome) || attempt >= options.retries) throw error
      const delay = retryDelay(attempt, options.backoff, error.retryAfterMs, options.random)
      options.onRetry?.(error, attempt + 1, delay)
      await wait(delay)
    }
  }
}
