import { shapeOf, type AttemptShape } from '../buildx/attempts.js'
import type { cacheActivity } from '../buildx/buildkit-log.js'
import { loginArgv } from '../registry/auth.js'
import { describePublishCheck, type PublishCheck } from '../registry/publish-check.js'
import { archTag, formatPlatform } from '../model/platform.js'
import { formatDuration } from '../model/duration.js'
import { shellQuote } from '../runtime/docker.js'
import type { RunResult } from '../runtime/report.js'
import type { BuildPlan } from './build.js'

// What a build plan says: its lines in the log, its commands in a dry run, and the outputs and
// summary of the run that carried it out.

/** The Plan group of the log. */
export function describeBuildPlan(plan: BuildPlan): string[] {
  const { config, cache, qemu } = plan
  return [
    `image ${plan.ref} (${formatPlatform(config.platform)})`,
    `push: ${plan.push.push} (${plan.push.reason})`,
    `publish check: ${plan.publishCheckSkipped ? `skipped (${plan.publishCheckSkipped})` : 'before the build'}`,
    `cache: ${cache.status === 'unavailable' ? 'gha unavailable, building without a cache' : `${cache.note}, ${plan.cacheWriteReason}`}`,
    describeSourceDate(plan),
    ...(plan.secrets.described.length ? [`secrets: ${plan.secrets.described.join(', ')}`] : []),
    ...(config.sbom ? [`sbom: ${config.sbom === 'true' ? "buildx's default scanner" : config.sbom}`] : []),
    `qemu: ${qemu.install ? 'install' : 'no install'} (${qemu.reason})`,
    `builder: ${plan.builder.name} (${plan.builder.kind === 'create' ? 'created by this run' : plan.builder.kind === 'reuse' ? 'reused' : 'docker driver'})`,
    ...(config.dryRun ? ['dry-run: the commands below are printed, not run'] : [])
  ]
}

const SOURCE_DATE_ORIGINS: Record<BuildPlan['sourceDate']['origin'], string> = {
  'build-args': 'SOURCE_DATE_EPOCH from build-args',
  'push event': "the head commit's time in the push event",
  git: "the commit's time in git",
  'run start': "this run's start: no commit time"
}

function describeSourceDate(plan: BuildPlan): string {
  const d = plan.sourceDate
  const created = `created: ${d.created} (${SOURCE_DATE_ORIGINS[d.origin]})`
  if (!plan.push.push) return created
  if (!d.rewriteTimestamps) {
    return `${created}, the label only: the docker driver pushes with --push (its image store refuses rewrite-timestamp), so a rebuild without the cache pushes different layers`
  }
  return `${created}, source-date-epoch=${d.epoch}, layer timestamps rewritten to it`
}

/** When the build runs again in another shape, and why; the first attempt has no condition. */
function attemptCondition(shape: AttemptShape, first: AttemptShape): string {
  if (shape === first) return ''
  const reasons = [
    ...(shape.startsWith('layout') ? ["BuildKit's push fails midway, an OCI layout pushed request by request"] : []),
    ...(shape.includes('no cache export') ? ['the engine cannot export cache'] : []),
    ...(shape.includes('no cache read') && !first.includes('no cache read') ? ['reading the cache makes no progress within cache-timeout'] : [])
  ]
  return reasons.map((reason) => `if ${reason}`).join('; ')
}

/** Every docker command the plan runs, in order, as a shell would take it; alternatives say when they run. */
export function plannedCommands(plan: BuildPlan): string[] {
  const docker = (argv: string[]) => `docker ${shellQuote(argv)}`
  const commands = plan.logins.map((l) => `${docker(loginArgv(l.registry, l.credentials.username))} < (secret on stdin)`)
  if (plan.qemu.argv) commands.push(docker(plan.qemu.argv))
  if (plan.builder.kind === 'create') commands.push(docker(plan.builder.argv))
  if (plan.builder.kind === 'reuse') commands.push(docker(['buildx', 'inspect', '--bootstrap', plan.builder.name]))
  const first = shapeOf(plan.attempts.first)
  let cold = plan.coldBuilder
  for (const [shape, argv] of Object.entries(plan.attempts.argv) as Array<[AttemptShape, string[]]>) {
    const condition = attemptCondition(shape, first)
    // the fresh builder is made right before the first build without the cache
    if (cold && shape.includes('no cache read')) {
      commands.push(`(${condition}) ${docker(cold.argv)}`)
      cold = undefined
    }
    commands.push(condition ? `(${condition}) ${docker(argv)}` : docker(argv))
  }
  const { cleanup } = plan
  for (const registry of cleanup.logout) commands.push(`(post step) ${docker(['logout', registry])}`)
  if (plan.coldBuilder) commands.push(`(post step, if made) ${docker(['buildx', 'rm', plan.coldBuilder.name])}`)
  if (cleanup.removeBuilder) commands.push(`(post step) ${docker(['buildx', 'rm', cleanup.removeBuilder])}`)
  if (cleanup.saveLocalCache && plan.localCache) commands.push(`(post step) save ${plan.localCache.exportDir} to the Actions cache as ${plan.localCache.key}`)
  return commands
}

/** What the run found out while carrying out the plan. */
export interface BuildOutcome {
  digest: string
  metadata: string
  publishCheck: PublishCheck
  activity?: ReturnType<typeof cacheActivity>
  /** the cache service refused new entries for its rate limit */
  cacheRateLimited?: boolean
  /** the cache read that made no progress within cache-timeout, after which the build ran without reading the cache */
  cacheReadStalled?: string
}

export function buildResult(plan: BuildPlan, outcome: BuildOutcome): RunResult {
  const { config, cache } = plan
  const pushed = plan.push.push && !config.dryRun
  const platform = formatPlatform(config.platform)
  const row = (when: unknown, name: string, value: () => string): Array<[string, string]> => (when ? [[name, value()]] : [])
  return {
    outputs: {
      image: config.image,
      tag: plan.tag,
      ref: plan.ref,
      digest: outcome.digest,
      platform,
      arch: archTag(config.platform),
      'cache-scope': config.cacheScope,
      pushed: String(pushed),
      metadata: outcome.metadata
    },
    summary: {
      title: `${config.dryRun ? 'Dry run: ' : ''}Brokkr build ${config.component} ${platform}`,
      rows: [
        ['image', config.image],
        ['platform', platform],
        ['tag', plan.tag],
        ['digest', outcome.digest],
        ['pushed', `${pushed} (${plan.push.reason})`],
        ['publish check', describePublishCheck(outcome.publishCheck)],
        [
          'cache',
          `${cache.status === 'on' ? `${cache.backend}, ${cache.note}` : `${cache.backend} (${cache.status})`}${outcome.cacheRateLimited ? '; new entries refused by the rate limit (429)' : ''}${outcome.cacheReadStalled ? `; reading it stalled, stopped after cache-timeout (${formatDuration(config.cacheTimeoutMs)}) and built without it` : ''}`
        ],
        ['cache scope', config.cacheScope],
        ...row(outcome.activity && outcome.activity.steps > 0, 'cache activity', () => describeActivity(outcome.activity!, cache.to.length > 0)),
        ...row(plan.secrets.described.length, 'secrets', () => plan.secrets.described.join(', ')),
        ['execution', plan.qemu.emulated ? `emulated (QEMU${plan.qemu.install ? ', installed by this run' : ''})` : 'native'],
        ...row(config.dryRun, 'commands', () => plannedCommands(plan).join('\n'))
      ]
    }
  }
}

/** One summary line from what BuildKit logged: steps answered from cache, and what the export wrote. */
function describeActivity(activity: ReturnType<typeof cacheActivity>, writes: boolean): string {
  const read = `${activity.cachedSteps} of ${activity.steps} steps CACHED`
  if (!writes) return `${read}; nothing written (read only)`
  if (!activity.exported) return `${read}; the export did not finish`
  return `${read}; ${activity.layersWritten} new layer entr${activity.layersWritten === 1 ? 'y' : 'ies'} written, plus the index`
}
