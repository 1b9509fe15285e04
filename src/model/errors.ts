// Every error the action raises, in one place: the ones a user reads (one line naming what to do,
// never a stack trace) and how a failed registry or docker call is classified.

/** A problem with one input: reported as `<input>: <what is wrong and what to do>`, before any docker command runs. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    detail: string
  ) {
    super(`${input}: ${detail}`)
    this.name = 'InputError'
  }
}

/** A failure the user can act on (missing image, wrong platform, denied push): one line, no stack trace. */
export class ActionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ActionError'
  }
}

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

/** One entry of a registry's error body (distribution spec: `{"errors": [{"code", "message", "detail"}]}`). */
export interface RegistryErrorEntry {
  code: string
  message: string
}

/** The entries of a registry's error body; none when it sent no body or not this shape. */
export function parseRegistryErrors(body: string): RegistryErrorEntry[] {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch {
    return []
  }
  const errors = (json as { errors?: unknown })?.errors
  if (!Array.isArray(errors)) return []
  return errors
    .filter((e): e is { code: string; message?: unknown } => typeof e?.code === 'string' && e.code !== '')
    .map((e) => ({ code: e.code, message: typeof e.message === 'string' ? e.message : '' }))
}

/** What the registry said, on one short line: `MANIFEST_INVALID: manifest invalid; ...`. */
function registrySaid(errors: RegistryErrorEntry[]): string {
  const text = errors
    .map((e) => (e.message ? `${e.code}: ${e.message}` : e.code))
    .join('; ')
    .replace(/\s+/g, ' ')
    .trim()
  return text.length > 300 ? `${text.slice(0, 297)}...` : text
}

/** A registry answered a request with an error status: the status, the registry's own codes and messages, Retry-After. */
export class RegistryError extends ClassifiedError {
  readonly code: string | undefined

  constructor(
    readonly what: string,
    readonly status: number,
    readonly errors: RegistryErrorEntry[] = [],
    retryAfterMs?: number
  ) {
    const outcome = classifyStatus(status)
    const said = registrySaid(errors)
    const reason =
      outcome === 'absent'
        ? `not found${said ? ` (${said})` : ''}`
        : outcome === 'auth'
          ? `access denied (HTTP ${status}${said ? `, ${said}` : ''})`
          : `HTTP ${status}${said ? ` ${said}` : ''}`
    super(`${what}: ${reason}`, outcome, retryAfterMs)
    this.name = 'RegistryError'
    this.code = errors[0]?.code
  }
}
