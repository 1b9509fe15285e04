import * as core from '@actions/core'
import { formatDuration } from '../model/duration.js'
import { ActionError, ClassifiedError } from '../model/errors.js'
import type { Manifest } from '../model/oci.js'
import { explainAuthFailure } from '../registry/auth.js'
import type { RegistryClient } from '../registry/client.js'
import { sleep, waitDelay } from '../registry/retry.js'

export interface WaitFor {
  ref: string
  tag: string
  deadline: number
  waitTimeoutMs: number
  signal: AbortSignal
}

/**
 * Polls a tag until it appears or the deadline passes. Polls are dense at first (a fresh push is
 * often invisible for seconds) and thin out while a sibling job may still be building. Transient
 * failures are retried under the client's policy (the run's); not-found is waited out, not counted
 * against it.
 */
export async function waitForManifest(client: RegistryClient, w: WaitFor): Promise<Manifest> {
  const retry = client.retry
  const start = Date.now()
  let transientStreak = 0
  let announced = false
  for (;;) {
    if (w.signal.aborted) throw new ActionError(`stopped waiting for ${w.ref}: another arch image failed`)
    try {
      return await client.poll(w.tag)
    } catch (error) {
      if (!(error instanceof ClassifiedError)) throw error
      if (error.outcome === 'auth') throw explainAuthFailure(error, client.registry)
      if (error.outcome === 'fatal') throw new ActionError(error.message)
      let delay: number
      if (error.outcome === 'transient') {
        if (++transientStreak > retry.retries) throw new ActionError(`${error.message} (gave up after ${retry.retries} retries)`)
        delay = retry.delay(transientStreak, error.retryAfterMs)
        retry.announce(error, transientStreak, delay)
      } else {
        transientStreak = 0
        delay = waitDelay(Date.now() - start, retry.backoff.baseMs)
        if (!announced) core.info(`${w.ref} is not there yet; waiting up to ${formatDuration(Math.max(0, w.deadline - Date.now()))}`)
        announced = true
      }
      const remaining = w.deadline - Date.now()
      if (remaining <= 0) {
        if (error.outcome === 'absent') {
          throw new ActionError(
            `${w.ref} did not appear within ${formatDuration(w.waitTimeoutMs)}: check that the build job for it pushed (mode: build, same sha) or raise wait-timeout; the index was not written`
          )
        }
        throw new ActionError(`${error.message} until wait-timeout expired; the index was not written`)
      }
      // the last poll lands on the deadline itself, not one step before it
      await sleep(Math.min(delay, remaining), w.signal)
    }
  }
}
