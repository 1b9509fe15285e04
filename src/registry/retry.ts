import * as core from '@actions/core'
import { ClassifiedError, type Outcome } from '../model/errors.js'

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

/** Waits, or stops early (without error) when the signal is aborted. */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve()
    })
  })

/** The one wording of every retry in the log: `<what> failed: <reason>; retry N of M in X ms`. */
export function retryLine(message: string, retry: number, retries: number, delayMs: number, note?: string): string {
  return `${message}; retry ${retry} of ${retries} in ${delayMs} ms${note ? ` (${note})` : ''}`
}

export interface RetryCall {
  /** outcomes worth another try; transient by default (reads of what was just pushed also retry absent) */
  retryOn?: Outcome[]
  /** said after the retry line: what the next try does differently */
  note?: (error: ClassifiedError) => string | undefined
  /** called before each wait, after the line is logged; `retry` counts from 1 */
  onRetry?: (error: ClassifiedError, retry: number) => void
  /** announce retries as warnings (whole builds, logins) rather than info lines (single requests) */
  warn?: boolean
}

export interface RetryPolicyOptions {
  retries: number
  backoff: Backoff
  info: (line: string) => void
  warning?: (line: string) => void
  sleep?: (ms: number) => Promise<void>
  random?: () => number
}

/** The one retry policy of a run: how many retries, how long between them, and how they are announced. */
export class RetryPolicy {
  constructor(readonly options: RetryPolicyOptions) {}

  get retries(): number {
    return this.options.retries
  }

  get backoff(): Backoff {
    return this.options.backoff
  }

  /** The same policy with at least `min` retries (read-after-write lag needs a few even with retries: 0). */
  atLeast(min: number): RetryPolicy {
    return new RetryPolicy({ ...this.options, retries: Math.max(this.options.retries, min) })
  }

  /** How long to wait before retry number `retry` (from 1). */
  delay(retry: number, retryAfterMs?: number): number {
    return retryDelay(retry - 1, this.options.backoff, retryAfterMs, this.options.random)
  }

  /** Waits between two tries (the policy's own sleep in tests). */
  pause(ms: number): Promise<void> {
    return (this.options.sleep ?? sleep)(ms)
  }

  /** Logs one retry in the one wording. */
  announce(error: ClassifiedError, retry: number, delayMs: number, call: Pick<RetryCall, 'note' | 'warn'> = {}): void {
    const line = retryLine(error.message, retry, this.options.retries, delayMs, call.note?.(error))
    const log = call.warn ? (this.options.warning ?? this.options.info) : this.options.info
    log(line)
  }

  /** Runs `fn`, retrying the retryable failures at most `retries` more times. */
  async run<T>(fn: () => Promise<T>, call: RetryCall = {}): Promise<T> {
    const retryable = call.retryOn ?? ['transient']
    for (let retry = 1; ; retry++) {
      try {
        return await fn()
      } catch (error) {
        if (!(error instanceof ClassifiedError) || !retryable.includes(error.outcome) || retry > this.options.retries) throw error
        const delay = this.delay(retry, error.retryAfterMs)
        this.announce(error, retry, delay, call)
        call.onRetry?.(error, retry)
        await this.pause(delay)
      }
    }
  }
}

/** Reads of what was just written (a tag, a digest we were handed): a replicated registry may lag, so absent is retried too. */
export const READ_AFTER_WRITE: RetryCall = { retryOn: ['transient', 'absent'] }

/** For a client that must not retry on its own (a check inside another retry loop, unit tests). */
export const NO_RETRY = new RetryPolicy({ retries: 0, backoff: { baseMs: 1, capMs: 1 }, info: () => undefined })

/** The run's policy from the retries and retry-delay inputs; single requests log as info, whole steps as warnings. */
export function retryPolicy(config: { retries: number; retryDelayMs: number }): RetryPolicy {
  return new RetryPolicy({ retries: config.retries, backoff: { baseMs: config.retryDelayMs, capMs: 30_000 }, info: core.info, warning: core.warning })
}
