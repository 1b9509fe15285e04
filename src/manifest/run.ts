import * as core from '@actions/core'
import type { ManifestConfig } from '../config/types.js'
import { formatDuration } from '../model/duration.js'
import { ActionError } from '../model/errors.js'
import { archRef } from '../model/image.js'
import { OCI_INDEX, type Manifest } from '../model/oci.js'
import { formatPlatform } from '../model/platform.js'
import { decidePush } from '../model/push.js'
import { indexTags } from '../model/tags.js'
import { explainAuthFailure, registryCredentials } from '../registry/auth.js'
import { RegistryClient } from '../registry/client.js'
import { READ_AFTER_WRITE, retryPolicy, type RetryPolicy } from '../registry/retry.js'
import type { GitHubContext } from '../runtime/github-context.js'
import { group } from '../runtime/log.js'
import type { RunResult } from '../runtime/result.js'
import { describePublishCheck, publishCheckSkipped, runPublishCheck } from '../registry/publish-check.js'
import { imageMetadata, withOverrides } from '../model/oci-metadata.js'
import { composeIndex } from './compose.js'
import { listPlatforms, pushedIndexProblem, verifySource } from './verify.js'

/** Manifest mode: wait for every arch image, prove each is its platform, push the index, check what was pushed. */
export async function runManifest(config: ManifestConfig, github: GitHubContext, env: NodeJS.ProcessEnv): Promise<RunResult> {
  const retry = retryPolicy(config)
  const decision = decidePush(config.push, github)
  if (decision.warning) core.warning(decision.warning)
  const tags = indexTags(config.sha, config.tags, config.autoTags, github)
  const indexRef = `${config.image}:${config.sha}`
  const platformList = config.platforms.map(formatPlatform).join(', ')
  const publishSkipped = publishCheckSkipped({ enabled: config.publishCheck, push: decision.push, dryRun: config.dryRun })

  await group('Plan', () => {
    core.info(`index ${indexRef} for ${platformList}`)
    core.info(`tags: ${tags.join(', ')}`)
    core.info(`push: ${decision.push} (${decision.reason})`)
    core.info(`publish check: ${publishSkipped ? `skipped (${publishSkipped})` : 'before waiting for the arch images'}`)
    for (const p of config.platforms) core.info(`source ${formatPlatform(p)}: ${archRef(config.image, config.sha, p)}`)
  })

  if (!decision.push) {
    core.notice(`No index for ${indexRef}: ${decision.reason}, so no arch image was pushed either`)
    return {
      outputs: { image: config.image },
      summary: {
        title: `Brokkr manifest ${config.component}: skipped`,
        rows: [
          ['image', config.image],
          ['pushed', `false (${decision.reason})`]
        ]
      }
    }
  }
  if (config.dryRun) {
    const plan = [
      `wait up to ${formatDuration(config.waitTimeoutMs)} for ${config.platforms.map((p) => archRef(config.image, config.sha, p)).join(', ')} and verify each image config`,
      ...tags.map((t) => `push the index of those arch images as ${config.image}:${t}`),
      `read ${indexRef} back and verify it`
    ]
    for (const line of plan) core.info(`[dry-run] ${line}`)
    return {
      outputs: { image: config.image },
      summary: {
        title: `Dry run: Brokkr manifest ${config.component}`,
        rows: [
          ['image', config.image],
          ['platforms', platformList],
          ['tags', tags.join(', ')],
          ['plan', plan.join('\n')]
        ]
      }
    }
  }

  // every read and write goes through our own client with the credentials in hand: docker's login is not needed
  const client = new RegistryClient(config.image, config.registry, registryCredentials(config, env), 'push')
  // a job that may not push learns it now, not after waiting up to wait-timeout for the arch images
  const publish = await runPublishCheck(config, publishSkipped, env, retry)

  const sources = await group('Wait for and verify the arch images', () => {
    const wait = { registry: config.registry, deadline: Date.now() + config.waitTimeoutMs, waitTimeoutMs: config.waitTimeoutMs }
    // one failed arch image ends the job: the other waits are called off rather than run to wait-timeout
    const stop = new AbortController()
    return Promise.all(config.platforms.map((p) => verifySource(client, config, p, { ...wait, signal: stop.signal }, retry))).catch((error) => {
      stop.abort()
      throw error
    })
  })

  const annotations = indexAnnotations(config, github, sources)
  await group(`Push ${indexRef}`, async () => {
    // one PUT per tag, each retried on its own: a registry hiccup costs one request, not the whole index
    const index = composeIndex(sources, annotations)
    for (const tag of tags) {
      await retry
        .run(() => client.putManifest(tag, OCI_INDEX, index))
        .catch((error) => {
          throw explainAuthFailure(error, config.registry)
        })
      core.info(`pushed ${config.image}:${tag}`)
    }
  })

  const { pushed, platforms } = await group('Verify what was pushed', async () => {
    const pushed = await readBack(client, config.sha, retry)
    const problem = pushedIndexProblem(indexRef, pushed, sources)
    if (problem) throw new ActionError(`verification of the pushed index failed: ${problem}`)
    for (const tag of tags.slice(1)) {
      const other = await readBack(client, tag, retry)
      if (other.digest !== pushed.digest) throw new ActionError(`${config.image}:${tag} points at ${other.digest}, not the new index ${pushed.digest}`)
    }
    const platforms = listPlatforms(pushed)
    core.info(`${indexRef}@${pushed.digest} holds ${platforms.join(', ')}`)
    return { pushed, platforms }
  })

  const sourceMap = Object.fromEntries(sources.map((s) => [formatPlatform(s.platform), s.tagDigest]))
  return {
    outputs: { image: config.image, digest: pushed.digest, tags: tags.join(','), platforms: platforms.join(','), sources: JSON.stringify(sourceMap) },
    summary: {
      title: `Brokkr manifest ${config.component}`,
      rows: [
        ['image', config.image],
        ['platforms', platforms.join(', ')],
        ['tags', tags.join(', ')],
        ['digest', pushed.digest],
        ['publish check', describePublishCheck(publish)],
        [
          'annotations',
          Object.entries(annotations)
            .map(([k, v]) => `${k.replace('org.opencontainers.image.', '')}=${v}`)
            .join('\n')
        ],
        ...sources.map((s): [string, string] => [`source ${formatPlatform(s.platform)}`, `${s.ref}@${s.tagDigest}`])
      ]
    }
  }
}

/**
 * The index's annotations. `created` is the commit's time on pushes (the same for every job of the
 * run), else the newest build among the arch images: two jobs racing on one sha push one digest.
 */
export function indexAnnotations(config: ManifestConfig, github: GitHubContext, sources: Array<{ created?: string }>): Record<string, string> {
  const built = sources
    .map((s) => s.created)
    .filter((c): c is string => c !== undefined)
    .sort((a, b) => Date.parse(a) - Date.parse(b))
  const created = github.commitTime ?? built[built.length - 1] ?? ''
  return withOverrides(imageMetadata(github, config.image, config.sha, created), config.annotations)
}

/**
 * Reads back a tag we just pushed. The registry may need a moment before it shows it, so this
 * read gets at least 3 retries even with `retries: 0`: a fresh index is not a flaky registry.
 */
async function readBack(client: RegistryClient, tag: string, retry: RetryPolicy): Promise<Manifest> {
  return retry.atLeast(3).run(() => client.manifest(tag), READ_AFTER_WRITE)
}
