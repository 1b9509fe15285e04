import * as core from '@actions/core'
import type { BaseConfig } from '../config/types.js'
import { ActionError, ClassifiedError } from '../model/errors.js'
import { group } from '../runtime/log.js'
import { authHint, registryCredentials } from './auth.js'
import { RegistryClient } from './client.js'
import type { RetryPolicy } from './retry.js'

/**
 * What the check before the build found. `refused` never comes back: it is thrown, so a job
 * without push rights ends in seconds instead of after a long build.
 */
export type PublishCheck =
  | { kind: 'passed' }
  | { kind: 'skipped'; reason: string }
  /** the registry does not let us ask this way (an upload on a repository it has not created yet, an unsupported method) */
  | { kind: 'unsupported'; reason: string }
  /** the registry kept failing; the push has its own retries */
  | { kind: 'inconclusive'; reason: string }

/** Why the check does not run, or undefined when it does. */
export function publishCheckSkipped(o: { enabled: boolean; push: boolean; dryRun: boolean }): string | undefined {
  if (!o.enabled) return 'publish-check: false'
  if (!o.push) return 'not pushing'
  if (o.dryRun) return 'dry-run'
  return undefined
}

/** Opens and cancels a blob upload in the target repository with a push-scoped token. */
export async function checkPublish(client: RegistryClient, registry: string, retry: RetryPolicy): Promise<PublishCheck> {
  try {
    await retry.run(() => client.probeUpload())
    return { kind: 'passed' }
  } catch (error) {
    if (!(error instanceof ClassifiedError)) throw error
    if (error.outcome === 'auth') {
      throw new ActionError(`${client.image}: this job may not push there (${error.message}); ${authHint(registry)}`)
    }
    if (error.outcome === 'transient') return { kind: 'inconclusive', reason: error.message }
    return { kind: 'unsupported', reason: error.message }
  }
}

/** The line the plan and the summary show. */
export function describePublishCheck(check: PublishCheck): string {
  switch (check.kind) {
    case 'passed':
      return 'push allowed (an upload was opened and cancelled)'
    case 'skipped':
      return `skipped (${check.reason})`
    case 'unsupported':
      return `not possible on this registry (${check.reason}); the push itself will tell`
    case 'inconclusive':
      return `inconclusive (${check.reason}); going on, the push has its own retries`
  }
}

/**
 * The check as both modes run it: skipped with its reason, or run in its own group. A registry
 * that does not allow it is said once, as a notice; a refusal throws.
 */
export async function runPublishCheck(config: BaseConfig, skipped: string | undefined, env: NodeJS.ProcessEnv, retry: RetryPolicy): Promise<PublishCheck> {
  if (skipped) return { kind: 'skipped', reason: skipped }
  const credentials = registryCredentials(config, env)
  // docker may still hold a login the action cannot read (a credential helper): asking anonymously would refuse a good job
  if (!credentials) return { kind: 'skipped', reason: 'no credentials the action can read; the push uses docker login' }
  return group('Publish check', async () => {
    const client = new RegistryClient(config.image, config.registry, credentials, 'push')
    const check = await checkPublish(client, config.registry, retry)
    const line = `publish check for ${config.image}: ${describePublishCheck(check)}`
    if (check.kind === 'passed') core.info(line)
    else if (check.kind === 'unsupported') core.notice(line)
    else core.warning(line)
    return check
  })
}
