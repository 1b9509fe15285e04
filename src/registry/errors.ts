// How a failed registry or docker call is classified, and the errors that carry that classification.

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

/**
 * What a registry sent for a digest is not what hashes to that digest: a broken proxy or a
 * tampered answer. Fatal: asking again cannot make wrong bytes right.
 */
export class DigestMismatchError extends ClassifiedError {
  constructor(
    readonly reference: string,
    readonly expected: string,
    readonly actual: string
  ) {
    super(`${reference}: the registry sent content whose digest is ${actual}, not ${expected}`, 'fatal')
    this.name = 'DigestMismatchError'
  }
}
