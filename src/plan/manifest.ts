import type { ManifestConfig, Credentials } from '../config/types.js'
import { describeAttached, NOTHING_ATTACHED, type Attached } from '../manifest/attestations.js'
import { formatDuration } from '../model/duration.js'
import type { GitHubContext } from '../model/github.js'
import { archImageTag, archRef } from '../model/image.js'
import { formatPlatform, type Platform } from '../model/platform.js'
import { decidePush, type PushDecision } from '../model/push.js'
import { releaseVersion, tagOrders, type TagOrder, type TagVerdict } from '../model/tag-order.js'
import { indexTags } from '../model/tags.js'
import { describePublishCheck, publishCheckSkipped, type PublishCheck } from '../registry/publish-check.js'
import type { RunResult } from '../runtime/report.js'

/** Everything a manifest run does, decided before it does any of it. */
export interface ManifestPlan {
  config: ManifestConfig
  push: PushDecision
  warnings: string[]
  /** `<image>:<sha>`, the index's own ref */
  indexRef: string
  /** every tag the index may be pushed under, the sha first */
  tags: string[]
  /** how each tag is ordered: always written, or moved only forward by version or by commit */
  tagOrders: Map<string, TagOrder>
  /** X.Y.Z on a `v*` push */
  version?: string
  /** the arch images to wait for and verify, in the order of `platforms` */
  sources: Array<{ platform: Platform; ref: string; tag: string }>
  credentials?: Credentials
  publishCheckSkipped?: string
  /** the steps in words: what a dry run prints */
  steps: string[]
}

export function planManifest(config: ManifestConfig, github: GitHubContext, probes: { credentials?: Credentials }): ManifestPlan {
  const push = decidePush(config.push, github)
  const tags = indexTags(config.sha, config.tags, config.autoTags, github)
  const sources = config.platforms.map((platform) => ({ platform, ref: archRef(config.image, config.sha, platform), tag: archImageTag(config.sha, platform) }))
  const indexRef = `${config.image}:${config.sha}`
  const orders = tagOrders(tags, config.sha, github)
  const version = releaseVersion(github)
  const moving = tags.filter((t) => orders.get(t) !== 'always')
  return {
    config,
    push,
    warnings: push.warning ? [push.warning] : [],
    indexRef,
    tags,
    tagOrders: orders,
    ...(version ? { version } : {}),
    sources,
    ...(probes.credentials ? { credentials: probes.credentials } : {}),
    publishCheckSkipped: publishCheckSkipped(config, push.push, probes.credentials),
    steps: [
      `wait up to ${formatDuration(config.waitTimeoutMs)} for ${sources.map((s) => s.ref).join(', ')} and verify each image config`,
      ...(moving.length
        ? [`read what ${moving.join(', ')} hold${moving.length === 1 ? 's' : ''} now; move each only to a newer index (${describeOrders(moving, orders)})`]
        : []),
      ...tags.map((t) => `push the index of those arch images as ${config.image}:${t}`),
      `read ${indexRef} back and verify it`
    ]
  }
}

function describeOrders(moving: string[], orders: Map<string, TagOrder>): string {
  const by = (order: TagOrder) => moving.filter((t) => orders.get(t) === order)
  const parts = [
    by('version').length ? `${by('version').join(', ')} by release version` : '',
    by('commit').length ? `${by('commit').join(', ')} by commit` : ''
  ]
  return parts.filter(Boolean).join('; ')
}

/** The Plan group of the log. */
export function describeManifestPlan(plan: ManifestPlan): string[] {
  const publishCheck = plan.publishCheckSkipped ? `skipped (${plan.publishCheckSkipped})` : 'before waiting for the arch images'
  return [
    `index ${plan.indexRef} for ${plan.sources.map((s) => formatPlatform(s.platform)).join(', ')}`,
    `tags: ${plan.tags.join(', ')}`,
    `push: ${plan.push.push} (${plan.push.reason})`,
    `publish check: ${publishCheck}`,
    ...plan.sources.map((s) => `source ${formatPlatform(s.platform)}: ${s.ref}`)
  ]
}

/** What the run found out while carrying out the plan. */
export interface ManifestOutcome {
  digest: string
  platforms: string[]
  publishCheck: PublishCheck
  annotations: Record<string, string>
  /** what each arch image was, and the attestations it carries, as checked */
  sources: Array<{ platform: Platform; ref: string; tagDigest: string; attached?: Attached }>
  /** the tags written to the index, and what was decided for each moving tag */
  written: string[]
  verdicts: TagVerdict[]
}

/** The outputs and summary: of a run that pushed, or of one that did not (no push, or a dry run). */
export function manifestResult(plan: ManifestPlan, outcome?: ManifestOutcome): RunResult {
  const { config } = plan
  const platformList = plan.sources.map((s) => formatPlatform(s.platform)).join(', ')
  if (!plan.push.push) {
    const rows: Array<[string, string]> = [
      ['image', config.image],
      ['pushed', `false (${plan.push.reason})`]
    ]
    return { outputs: { image: config.image }, summary: { title: `Brokkr manifest ${config.component}: skipped`, rows } }
  }
  if (!outcome) {
    const rows: Array<[string, string]> = [
      ['image', config.image],
      ['platforms', platformList],
      ['tags', plan.tags.join(', ')],
      ['plan', plan.steps.join('\n')]
    ]
    return { outputs: { image: config.image }, summary: { title: `Dry run: Brokkr manifest ${config.component}`, rows } }
  }
  const annotations = Object.entries(outcome.annotations).map(([k, v]) => `${k.replace('org.opencontainers.image.', '')}=${v}`)
  return {
    outputs: {
      image: config.image,
      digest: outcome.digest,
      tags: outcome.written.join(','),
      'moved-tags': outcome.verdicts
        .filter((v) => v.move)
        .map((v) => v.tag)
        .join(','),
      platforms: outcome.platforms.join(','),
      sources: JSON.stringify(Object.fromEntries(outcome.sources.map((s) => [formatPlatform(s.platform), s.tagDigest])))
    },
    summary: {
      title: `Brokkr manifest ${config.component}`,
      rows: [
        ['image', config.image],
        ['platforms', outcome.platforms.join(', ')],
        ['tags', outcome.written.join(', ')],
        ...outcome.verdicts.map((v): [string, string] => [`tag ${v.tag}`, v.reason]),
        ['digest', outcome.digest],
        ['publish check', describePublishCheck(outcome.publishCheck)],
        ['annotations', annotations.join('\n')],
        ...outcome.sources.map((s): [string, string] => [`source ${formatPlatform(s.platform)}`, `${s.ref}@${s.tagDigest}`]),
        ...outcome.sources.map((s): [string, string] => [`attached ${formatPlatform(s.platform)}`, describeAttached(s.attached ?? NOTHING_ATTACHED)])
      ]
    }
  }
}
