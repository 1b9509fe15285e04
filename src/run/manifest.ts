import * as core from '@actions/core'
import type { RunnerEnvironment } from '../config/environment.js'
import type { ManifestConfig } from '../config/types.js'
import { ActionError } from '../model/errors.js'
import type { GitHubContext } from '../model/github.js'
import { imageMetadata, withOverrides } from '../model/oci-metadata.js'
import { OCI_INDEX } from '../model/oci.js'
import { explainAuthFailure, registryCredentials } from '../registry/auth.js'
import { RegistryClient } from '../registry/client.js'
import { runPublishCheck } from '../registry/publish-check.js'
import { retryPolicy } from '../registry/retry.js'
import { group } from '../runtime/log.js'
import type { RunResult } from '../runtime/report.js'
import { githubCompare, type CompareCommits } from '../github/compare.js'
import { checkAttestations, describeAttached } from '../manifest/attestations.js'
import { composeIndex } from '../manifest/compose.js'
import { decideMovingTags } from '../manifest/moving-tags.js'
import { listPlatforms, pushedIndexProblem, verifySource } from '../manifest/verify.js'
import { describeManifestPlan, manifestResult, planManifest, type ManifestOutcome, type ManifestPlan } from '../plan/manifest.js'

/** Manifest mode: make the plan, print it, and carry it out when pushing and not a dry run. */
export async function runManifest(config: ManifestConfig, github: GitHubContext, env: RunnerEnvironment): Promise<RunResult> {
  const plan = planManifest(config, github, { credentials: registryCredentials(config, env.dockerConfigDir) })
  for (const warning of plan.warnings) core.warning(warning)
  await group('Plan', () => describeManifestPlan(plan).forEach((line) => core.info(line)))
  if (!plan.push.push) {
    core.notice(`No index for ${plan.indexRef}: ${plan.push.reason}, so no arch image was pushed either`)
    return manifestResult(plan)
  }
  if (config.dryRun) {
    for (const step of plan.steps) core.info(`[dry-run] ${step}`)
    return manifestResult(plan)
  }
  const compare = githubCompare({ token: config.githubToken, apiUrl: env.apiUrl, repository: github.repository })
  return manifestResult(plan, await executeManifest(plan, github, compare))
}

/** Waits for every arch image, proves each is its platform, pushes the index under every tag and checks what was pushed. */
export async function executeManifest(plan: ManifestPlan, github: GitHubContext, compare: CompareCommits): Promise<ManifestOutcome> {
  const { config } = plan
  // every read and write goes through our own client with the credentials in hand: docker's login is not needed
  const registry = new RegistryClient(config.image, config.registry, plan.credentials, 'push', retryPolicy(config))
  // a job that may not push learns it now, not after waiting up to wait-timeout for the arch images
  const publishCheck = await runPublishCheck(registry, plan.publishCheckSkipped)

  const sources = await group('Wait for and verify the arch images', () => {
    // one failed arch image ends the job: the other waits are called off rather than run to wait-timeout
    const stop = new AbortController()
    const wait = { deadline: Date.now() + config.waitTimeoutMs, waitTimeoutMs: config.waitTimeoutMs, signal: stop.signal }
    // each attestation it carries is checked against the very platform manifest it sits beside
    const verify = async (source: ManifestPlan['sources'][number]) => {
      const verified = await verifySource(registry, source, wait)
      const attached = await checkAttestations(registry, verified)
      core.info(`${verified.ref} carries ${describeAttached(attached)}`)
      return { ...verified, attached }
    }
    return Promise.all(plan.sources.map(verify)).catch((error) => {
      stop.abort()
      throw error
    })
  })

  const annotations = indexAnnotations(config, github, sources)
  // a late job must not roll a moving tag back: each moves only to an index at least as new as its own
  const moving = [...plan.tagOrders.values()].some((order) => order !== 'always')
  const ours = {
    sha: config.sha,
    ...(plan.version ? { version: plan.version } : {}),
    annotations,
    ...(github.commitTime ? { commitTime: github.commitTime } : {})
  }
  const verdicts = moving ? await group('Moving tags', () => decideMovingTags(registry, ours, plan.tagOrders, compare)) : []
  const written = plan.tags.filter((tag) => plan.tagOrders.get(tag) === 'always' || verdicts.some((v) => v.tag === tag && v.move))
  await group(`Push ${plan.indexRef}`, async () => {
    // one PUT per tag, each retried on its own: a registry hiccup costs one request, not the whole index
    const index = composeIndex(sources, annotations)
    for (const tag of written) {
      await registry.putManifest(tag, OCI_INDEX, index).catch((error) => {
        throw explainAuthFailure(error, config.registry)
      })
      core.info(`pushed ${config.image}:${tag}`)
    }
  })

  return group('Verify what was pushed', async () => {
    const pushed = await registry.readBack(config.sha)
    const problem = pushedIndexProblem(plan.indexRef, pushed, sources)
    if (problem) throw new ActionError(`verification of the pushed index failed: ${problem}`)
    for (const tag of written.slice(1)) {
      const other = await registry.readBack(tag)
      if (other.digest !== pushed.digest) throw new ActionError(`${config.image}:${tag} points at ${other.digest}, not the new index ${pushed.digest}`)
    }
    const platforms = listPlatforms(pushed)
    core.info(`${plan.indexRef}@${pushed.digest} holds ${platforms.join(', ')}`)
    return { digest: pushed.digest, platforms, publishCheck, annotations, sources, written, verdicts }
  })
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
