import { join } from 'node:path'
import { buildArgv, defaultProvenance, ociLabels, rewritesTimestamps, type Reproducible } from '../buildx/argv.js'
import { firstAttempt, reachableAttempts, shapeOf, type Attempt, type AttemptShape } from '../buildx/attempts.js'
import { decideBuilder, decideColdBuilder, sbomProblem, type BuilderStep, type CreateBuilderStep, type ExistingBuilder } from '../buildx/builder.js'
import { decideCacheWrite, localCacheKey, localCacheKeyPrefix, planCache, type CachePlan } from '../buildx/cache.js'
import { decideQemu, type QemuDecision } from '../buildx/qemu.js'
import { planSecrets } from '../buildx/secrets.js'
import { ghaCacheAvailable, type RunnerEnvironment } from '../config/environment.js'
import type { BuildConfig, Credentials } from '../config/types.js'
import { InputError } from '../model/errors.js'
import type { GitHubContext } from '../model/github.js'
import { archImageTag, archRef } from '../model/image.js'
import { decidePush, type PushDecision } from '../model/push.js'
import { decideSourceDate, type SourceDate } from '../model/source-date.js'
import { planLogins, type LoginStep } from '../registry/auth.js'
import { publishCheckSkipped } from '../registry/publish-check.js'

/** What the planner needs from the machine, gathered before planning (see run/build.ts). */
export interface BuildProbes {
  /** Node's process.arch */
  nodeArch: string
  /** binfmt_misc already runs the target platform */
  binfmtRegistered: boolean
  /** what answers to the builder name today (nothing for the docker driver) */
  existingBuilder?: ExistingBuilder
  /** the docker context, which is the builder of the docker driver */
  dockerContext: string
  /** the docker driver's engine uses the containerd image store (asked only for an SBOM on that driver) */
  containerdStore?: boolean
  /** credentials our own registry client can use: the inputs, or a login docker stored before */
  credentials?: Credentials
  /** a directory of this run's own (metadata file, OCI layout, buildkitd.toml), made by the executor */
  workDir: string
  startedAt: number
  /** the commit time the checkout's git has for the sha, when it has it (see github/commit-time.ts) */
  gitCommitTime?: string
}

/** cache: local is restored before the build and saved by the post step under a key of this run. */
export interface LocalCacheSteps {
  dir: string
  prefix: string
  key: string
  /** the fresh export the post step saves; absent when the cache is only read */
  exportDir?: string
}

/**
 * Everything a build run does, decided before it does any of it. Executing a plan only carries it
 * out; a dry run prints it. The one thing left to the run is whether the build reads a local cache:
 * only when the restore brought one back.
 */
export interface BuildPlan {
  config: BuildConfig
  ref: string
  tag: string
  push: PushDecision
  /** said before anything runs */
  warnings: string[]
  notices: string[]
  /** secret values to mask before anything prints */
  masks: string[]
  logins: LoginStep[]
  credentials?: Credentials
  /** why the publish check does not run, or undefined when it does */
  publishCheckSkipped?: string
  qemu: QemuDecision
  builder: BuilderStep
  cache: CachePlan
  cacheWriteReason: string
  localCache?: LocalCacheSteps
  /** when the image says it was made (from the commit, not the run), and whether layer times are rewritten to it */
  sourceDate: SourceDate & Reproducible
  /** ids and sources of the build's secrets (never values), and the variables only the build gets */
  secrets: { described: string[]; env: Record<string, string> }
  workDir: string
  metadataFile: string
  /** the first attempt, and the argv of every attempt shape the run can reach from it */
  attempts: { first: Attempt; argv: Partial<Record<AttemptShape, string[]>> }
  /** a fresh builder for the build without the cache, made only when a cache read stalls (see decideColdBuilder) */
  coldBuilder?: CreateBuilderStep
  /** what the post step undoes or saves */
  cleanup: { removeBuilder?: string; logout: string[]; saveLocalCache: boolean }
}

export function planBuild(config: BuildConfig, github: GitHubContext, env: RunnerEnvironment, probes: BuildProbes): BuildPlan {
  const sbom = sbomProblem(config, probes.containerdStore)
  if (sbom) throw new InputError('sbom', sbom)
  const push = decidePush(config.push, github)
  const warnings = push.warning ? [push.warning] : []
  const notices: string[] = []
  const cacheWrite = decideCacheWrite(config.cacheWrite, github)
  const cache = planCache(config, {
    push: push.push,
    write: cacheWrite.write,
    ghaAvailable: ghaCacheAvailable(env),
    localDir: join(env.runnerTemp, 'brokkr-build-cache', config.cacheScope)
  })
  if (cache.status === 'unavailable') warnings.push(cache.note)
  // a bad ssh source fails here, before any docker command
  const secrets = planSecrets(config.secrets, config.ssh, env, github.fromFork)
  ;(github.fromFork ? notices : warnings).push(...secrets.skipped)
  const logins = planLogins(config, push.push, github.fromFork)
  notices.push(...logins.notices)
  const builder = decideBuilder(config, probes.dockerContext, probes.existingBuilder, probes.workDir)
  const metadataFile = join(probes.workDir, 'metadata.json')
  const sourceDate = planSourceDate(config, github, probes, push.push)
  notices.push(...sourceDate.notices)
  const labels = ociLabels(config, github, sourceDate.created)
  const first = firstAttempt(push.push, join(probes.workDir, 'oci'))
  const coldBuilder = cache.from.length > 0 ? decideColdBuilder(config, probes.workDir) : undefined
  const argv: Partial<Record<AttemptShape, string[]>> = {}
  for (const shape of reachableAttempts(first, cache.from.length > 0)) {
    // without the cache means no lookup at all: a builder keeps what a stalled import already
    // loaded, and would fetch those layers from the failing service again
    argv[shapeOf(shape)] = buildArgv(shape.readCache ? config : { ...config, noCache: true }, {
      builder: shape.readCache ? builder.name : (coldBuilder?.name ?? builder.name),
      output: shape.output,
      metadataFile,
      labels,
      cache: shape.exportCache ? cache : { ...cache, to: [] },
      includeCacheFrom: shape.readCache,
      defaultProvenance: defaultProvenance(env),
      secretArgs: secrets.args,
      reproducible: sourceDate.reproducible
    })
  }
  const prefix = localCacheKeyPrefix(config.cacheScope)
  const localCache =
    cache.backend === 'local' && cache.localDir
      ? { dir: cache.localDir, prefix, key: localCacheKey(prefix, env), ...(cache.localExportDir ? { exportDir: cache.localExportDir } : {}) }
      : undefined
  return {
    config,
    ref: archRef(config.image, config.sha, config.platform),
    tag: archImageTag(config.sha, config.platform),
    push,
    warnings,
    notices,
    masks: secrets.values,
    logins: logins.logins,
    ...(probes.credentials ? { credentials: probes.credentials } : {}),
    publishCheckSkipped: publishCheckSkipped(config, push.push, probes.credentials),
    qemu: decideQemu(config, probes.nodeArch, probes.binfmtRegistered),
    builder,
    cache,
    cacheWriteReason: cacheWrite.reason,
    ...(localCache ? { localCache } : {}),
    sourceDate: { ...sourceDate.date, ...sourceDate.reproducible },
    secrets: { described: secrets.described, env: secrets.env },
    workDir: probes.workDir,
    metadataFile,
    attempts: { first, argv },
    ...(coldBuilder ? { coldBuilder } : {}),
    cleanup: {
      ...(builder.kind === 'create' && !config.keepBuilder ? { removeBuilder: builder.name } : {}),
      logout: logins.logins.map((l) => l.registry),
      saveLocalCache: Boolean(localCache?.exportDir)
    }
  }
}

/**
 * Same commit, same image: the created label and the image output's source-date-epoch are the
 * commit's time, and the pushed image rewrites layer timestamps to it where the driver allows.
 */
function planSourceDate(config: BuildConfig, github: GitHubContext, probes: BuildProbes, push: boolean) {
  const date = decideSourceDate({
    github,
    sha: config.sha,
    buildArgs: config.buildArgs,
    startedAt: probes.startedAt,
    ...(probes.gitCommitTime ? { gitCommitTime: probes.gitCommitTime } : {})
  })
  const reproducible: Reproducible = {
    ...(date.fromBuildArgs ? {} : { sourceDateEpoch: date.epoch }),
    rewriteTimestamps: rewritesTimestamps(config.driver)
  }
  // an image that is not pushed is nobody's to compare; the docker driver's kept timestamps are said in the Plan group
  const notices = push && date.notice ? [date.notice] : []
  return { date, reproducible, created: date.created, notices }
}
