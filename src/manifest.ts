import * as core from '@actions/core'
import { explainAuthFailure, registryCredentials } from './auth.js'
import { formatDuration } from './duration.js'
import { ActionError } from './errors.js'
import type { GitHubContext } from './github-context.js'
import type { Config } from './inputs.js'
import { archImageTag, archRef, decidePush } from './plan.js'
import { formatPlatform, type Platform } from './platform.js'
import { RegistryClient, type Manifest } from './registry.js'
import { ClassifiedError, requestRetries, retryDelay, sleep, waitDelay, withRetries, type Backoff } from './retry.js'
import { writeSummary } from './summary.js'
import { indexTags } from './tags.js'
import { composeIndex, configPlatformProblem, listPlatforms, OCI_INDEX, pickPlatformManifest, pushedIndexProblem, type VerifiedSource } from './verify.js'

interface Source extends VerifiedSource {
  ref: string
  /** what the arch tag points at (an index when BuildKit added attestations) */
  answer: Manifest
  tagDigest: string
}

/** Manifest mode: wait for every arch image, prove each is its platform, push the index, check what was pushed. */
export async function runManifest(config: Config, github: GitHubContext, env: NodeJS.ProcessEnv): Promise<void> {
  const startedAt = Date.now()
  const backoff: Backoff = { baseMs: config.retryDelayMs, capMs: 30_000 }
  const decision = decidePush(config.push, github)
  if (decision.warning) core.warning(decision.warning)
  const tags = indexTags(config.sha, config.tags, config.autoTags, github)
  const indexRef = `${config.image}:${config.sha}`
  core.setOutput('image', config.image)

  core.startGroup('Plan')
  core.info(`index ${indexRef} for ${config.platforms.map(formatPlatform).join(', ')}`)
  core.info(`tags: ${tags.join(', ')}`)
  core.info(`push: ${decision.push} (${decision.reason})`)
  for (const p of config.platforms) core.info(`source ${formatPlatform(p)}: ${archRef(config.image, config.sha, p)}`)
  core.endGroup()

  if (!decision.push) {
    core.notice(`No index for ${indexRef}: ${decision.reason}, so no arch image was pushed either`)
    await writeSummary(
      `Brokkr manifest ${config.component}: skipped`,
      [
        ['image', config.image],
        ['pushed', `false (${decision.reason})`]
      ],
      startedAt
    )
    return
  }
  if (config.dryRun) {
    const plan = [
      `wait up to ${formatDuration(config.waitTimeoutMs)} for ${config.platforms.map((p) => archRef(config.image, config.sha, p)).join(', ')} and verify each image config`,
      ...tags.map((t) => `push the index of those arch images as ${config.image}:${t}`),
      `read ${indexRef} back and verify it`
    ]
    for (const line of plan) core.info(`[dry-run] ${line}`)
    await writeSummary(
      `Dry run: Brokkr manifest ${config.component}`,
      [
        ['image', config.image],
        ['platforms', config.platforms.map(formatPlatform).join(', ')],
        ['tags', tags.join(', ')],
        ['plan', plan.join('\n')]
      ],
      startedAt
    )
    return
  }

  // every read and write goes through our own client with the credentials in hand: docker's login is not needed
  const client = new RegistryClient(config.image, config.registry, registryCredentials(config, env), 'push')

  core.startGroup('Wait for and verify the arch images')
  const deadline = Date.now() + config.waitTimeoutMs
  // one failed arch image ends the job: the other waits are called off rather than run to wait-timeout
  const stop = new AbortController()
  const sources = await Promise.all(config.platforms.map((p) => verifySource(client, config, p, deadline, backoff, stop.signal))).catch((error) => {
    stop.abort()
    throw error
  })
  core.endGroup()

  core.startGroup(`Push ${indexRef}`)
  // one PUT per tag, each retried on its own: a registry hiccup costs one request, not the whole index
  const index = composeIndex(sources)
  const retry = requestRetries(config.retries, backoff, core.info)
  for (const tag of tags) {
    await withRetries(() => client.putManifest(tag, OCI_INDEX, index), retry).catch((error) => {
      throw explainAuthFailure(error, config.registry)
    })
    core.info(`pushed ${config.image}:${tag}`)
  }
  core.endGroup()

  core.startGroup('Verify what was pushed')
  const pushed = await readBack(client, config.sha, config, backoff)
  const problem = pushedIndexProblem(indexRef, pushed, sources)
  if (problem) throw new ActionError(`verification of the pushed index failed: ${problem}`)
  for (const tag of tags.slice(1)) {
    const other = await readBack(client, tag, config, backoff)
    if (other.digest !== pushed.digest) throw new ActionError(`${config.image}:${tag} points at ${other.digest}, not the new index ${pushed.digest}`)
  }
  const platforms = listPlatforms(pushed)
  core.info(`${indexRef}@${pushed.digest} holds ${platforms.join(', ')}`)
  core.endGroup()

  const sourceMap = Object.fromEntries(sources.map((s) => [formatPlatform(s.platform), s.tagDigest]))
  core.setOutput('digest', pushed.digest)
  core.setOutput('tags', tags.join(','))
  core.setOutput('platforms', platforms.join(','))
  core.setOutput('sources', JSON.stringify(sourceMap))
  await writeSummary(
    `Brokkr manifest ${config.component}`,
    [
      ['image', config.image],
      ['platforms', platforms.join(', ')],
      ['tags', tags.join(', ')],
      ['digest', pushed.digest],
      ...sources.map((s): [string, string] => [`source ${formatPlatform(s.platform)}`, `${s.ref}@${s.tagDigest}`])
    ],
    startedAt
  )
}

/** Waits until the arch tag exists, then proves from its image config that it is the expected platform. */
async function verifySource(
  client: RegistryClient,
  config: Config,
  platform: Platform,
  deadline: number,
  backoff: Backoff,
  signal: AbortSignal
): Promise<Source> {
  const ref = archRef(config.image, config.sha, platform)
  const tag = archImageTag(config.sha, platform)
  const answer = await waitForManifest(client, ref, tag, config, deadline, backoff, signal)
  const picked = pickPlatformManifest(ref, answer, platform)
  if ('problem' in picked) throw new ActionError(`${picked.problem}; the index was not written`)
  // a digest we were just given may lag behind the tag on a replicated registry: absent is retried too
  const byDigest = requestRetries(config.retries, backoff, core.info, true)
  const manifest = picked.digest === answer.digest ? answer : await withRetries(() => client.manifest(picked.digest), byDigest)
  const configDigest = manifest.json?.config?.digest
  if (!configDigest) throw new ActionError(`${ref} has no image config; the index was not written`)
  const imageConfig = await withRetries(() => client.blobJson(configDigest), byDigest)
  const problem = configPlatformProblem(ref, imageConfig, platform)
  if (problem) throw new ActionError(`${problem}; the index was not written`)
  core.info(`${ref} is ${formatPlatform(platform)} (${picked.digest})`)
  return { platform, manifestDigest: picked.digest, tagDigest: answer.digest, answer, ref }
}

/**
 * Polls a tag until it appears or the deadline passes. Polls are dense at first (a fresh push is
 * often invisible for seconds) and thin out while a sibling job may still be building.
 */
async function waitForManifest(
  client: RegistryClient,
  ref: string,
  tag: string,
  config: Config,
  deadline: number,
  backoff: Backoff,
  signal: AbortSignal
): Promise<Manifest> {
  const start = Date.now()
  let transientStreak = 0
  let announced = false
  for (;;) {
    if (signal.aborted) throw new ActionError(`stopped waiting for ${ref}: another arch image failed`)
    try {
      return await client.manifest(tag)
    } catch (error) {
      if (!(error instanceof ClassifiedError)) throw error
      if (error.outcome === 'auth') throw explainAuthFailure(error, config.registry)
      if (error.outcome === 'fatal') throw new ActionError(error.message)
      let delay: number
      if (error.outcome === 'transient') {
        if (++transientStreak > config.retries) throw new ActionError(`${error.message} (gave up after ${config.retries} retries)`)
        delay = retryDelay(transientStreak - 1, backoff, error.retryAfterMs)
        core.info(`${error.message}; retry ${transientStreak} in ${delay} ms`)
      } else {
        transientStreak = 0
        delay = waitDelay(Date.now() - start, backoff.baseMs)
        if (!announced) core.info(`${ref} is not there yet; waiting up to ${formatDuration(Math.max(0, deadline - Date.now()))}`)
        announced = true
      }
      const remaining = deadline - Date.now()
      if (remaining <= 0) {
        if (error.outcome === 'absent') {
          throw new ActionError(
            `${ref} did not appear within ${formatDuration(config.waitTimeoutMs)}: check that the build job for it pushed (mode: build, same sha) or raise wait-timeout; the index was not written`
          )
        }
        throw new ActionError(`${error.message} until wait-timeout expired; the index was not written`)
      }
      // the last poll lands on the deadline itself, not one step before it
      await sleep(Math.min(delay, remaining), signal)
    }
  }
}

/** Reads back a tag we just pushed: the registry may need a moment before it shows it. */
async function readBack(client: RegistryClient, tag: string, config: Config, backoff: Backoff): Promise<Manifest> {
  return withRetries(() => client.manifest(tag), requestRetries(Math.max(config.retries, 3), backoff, core.info, true))
}
