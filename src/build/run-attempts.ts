import type { BuildConfig } from '../config/types.js'
import { explainAuthFailure } from '../registry/auth.js'
import type { RetryPolicy } from '../registry/retry.js'
import type { Docker, DockerResult } from '../runtime/docker.js'
import { group } from '../runtime/log.js'
import { CHANGE_NOTES, firstAttempt, isFinal, nextAttempt, type Attempt } from './attempts.js'
import { boundCacheExport } from './cache.js'

/**
 * Runs `docker buildx build` until it succeeds or no retry is left. Each failure decides the next
 * attempt (nextAttempt); the retry policy decides whether there is one and when.
 */
export async function runBuildAttempts(
  config: BuildConfig,
  docker: Docker,
  ref: string,
  push: boolean,
  layoutDir: string,
  retry: RetryPolicy,
  argv: (attempt: Attempt) => string[],
  buildEnv: Record<string, string> = {}
): Promise<{ built: DockerResult; attempt: Attempt }> {
  let attempt = firstAttempt(push, layoutDir)
  let next = attempt
  const once = () => {
    const bound = boundCacheExport(config.cacheTimeoutMs, attempt.output.kind !== 'none')
    const classify = (log: string, errorText: string) => {
      const decided = nextAttempt(attempt, { log, errorText })
      if (isFinal(decided)) return decided.final
      next = decided
      return 'transient' as const
    }
    return docker.mustRun('docker buildx build', argv(attempt), { stream: true, classify, onLine: bound.onLine, env: buildEnv }).finally(() => bound.dispose())
  }
  return group(`Build ${ref}`, async () => {
    try {
      const built = await retry.run(once, {
        warn: true,
        note: () => (next.change ? CHANGE_NOTES[next.change] : undefined),
        onRetry: () => {
          attempt = next
        }
      })
      return { built, attempt }
    } catch (error) {
      throw explainAuthFailure(error, config.registry)
    }
  })
}
