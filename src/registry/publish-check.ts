import * as core from '@actions/core'
import type { BaseConfig, Credentials } from '../config/types.js'
import { ActionError, ClassifiedError } from '../model/errors.js'
import { group } from '../runtime/log.js'
import { authHint } from './auth.js'
import type { RegistryClient } from './client.js'

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

/**
 * Why the check does not run, or undefined when it does. Docker may hold a login the action cannot
 * read (a credential helper): asking anonymously would refuse a good job, so no credentials, no check.
 */
export function publishCheckSkipped(
  config: Pick<BaseConfig, 'publishCheck' | 'dryRun'>,
  push: boolean,
  credentials: Credentials | undefined
): string | undefined {
  if (!config.publishCheck) return 'publish-check: false'
  if (!push) return 'not pushing'
  if (config.dryRun) return 'dry-run'
  if (!credentials) return 'no credentials the action can read; the push uses docker login'
  return undefined
}

/** Opens and cancels a blob upload in the target repository with a push-scoped token. */
export async function checkPublish(client: RegistryClient): Promise<PublishCheck> {
  try {
    await client.probeUpload()
    return { kind: 'passed' }
  } catch (error) {
    if (!(error instanceof ClassifiedError)) throw error
    if (error.outcome === 'auth') {
      throw new ActionError(`${client.image}: this job may not push there (${error.message}); ${authHint(client.registry)}`)
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
export async function runPublishCheck(client: RegistryClient, skipped: string | undefined): Promise<PublishCheck> {
  if (skipped) return { kind: 'skipped', reason: skipped }
  return group('Publish check', async () => {
    const check = await checkPublish(client)
    const line = `publish check for ${client.image}: ${describePublishCheck(check)}`
    if (check.kind === 'passed') core.info(line)
    else if (check.kind === 'unsupported') core.notice(line)
    else core.warning(line)
    return check
  })
}
