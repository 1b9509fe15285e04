import * as core from '@actions/core'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { withoutCacheFrom } from '../buildx/argv.js'
import { CHANGE_NOTES, isFinal, nextAttempt, shapeOf, withoutCacheRead, type Attempt } from '../buildx/attempts.js'
import { currentContext, inspectBuilder, probeContainerdStore, setUpBuilder, setUpColdBuilder } from '../buildx/builder.js'
import { cacheActivity, cacheRateLimited } from '../buildx/buildkit-log.js'
import { boundCache, cacheReadWarning, cacheWarnings, hasLocalCache, restoreLocalCache } from '../buildx/cache.js'
import { binfmtRegistered, installQemu } from '../buildx/qemu.js'
import type { RunnerEnvironment } from '../config/environment.js'
import type { BuildConfig } from '../config/types.js'
import { ActionError, ClassifiedError } from '../model/errors.js'
import type { GitHubContext } from '../model/github.js'
import { gitCommitTime } from '../github/commit-time.js'
import { explainAuthFailure, logIn, registryCredentials } from '../registry/auth.js'
import { RegistryClient } from '../registry/client.js'
import { pushLayout } from '../registry/layout-push.js'
import { runPublishCheck } from '../registry/publish-check.js'
import { retryPolicy, type RetryPolicy } from '../registry/retry.js'
import { Docker, lastErrorLines, type DockerResult } from '../runtime/docker.js'
import { group } from '../runtime/log.js'
import type { RunResult } from '../runtime/report.js'
import { saveState, type PostState } from '../runtime/state.js'
import { buildResult, describeBuildPlan, plannedCommands, type BuildOutcome } from '../plan/build-report.js'
import { planBuild, type BuildPlan } from '../plan/build.js'

/** Build mode: probe the machine, make the plan, print it, and carry it out unless this is a dry run. */
export async function runBuild(config: BuildConfig, github: GitHubContext, env: RunnerEnvironment, startedAt: number): Promise<RunResult> {
  const docker = new Docker()
  // the push event names the head commit's time; other events leave it to the checkout
  const fromGit = github.commitTime && github.sha === config.sha ? undefined : await gitCommitTime(config.context, config.sha)
  const plan = planBuild(config, github, env, {
    nodeArch: process.arch,
    binfmtRegistered: binfmtRegistered(config.platform),
    existingBuilder: await inspectBuilder(config, docker),
    dockerContext: currentContext(env),
    containerdStore: await probeContainerdStore(config, docker),
    credentials: registryCredentials(config, env.dockerConfigDir),
    workDir: join(env.runnerTemp, `brokkr-build-${randomBytes(4).toString('hex')}`),
    startedAt,
    ...(fromGit ? { gitCommitTime: fromGit } : {})
  })
  for (const value of plan.masks) core.setSecret(value)
  for (const warning of plan.warnings) core.warning(warning)
  for (const notice of plan.notices) core.notice(notice)
  await group('Plan', () => describeBuildPlan(plan).forEach((line) => core.info(line)))
  if (config.dryRun) {
    for (const command of plannedCommands(plan)) core.info(`[dry-run] ${command}`)
    core.info(`Built ${plan.ref} (not pushed: dry-run)`)
    return buildResult(plan, { digest: '', metadata: '{}', publishCheck: { kind: 'skipped', reason: 'dry-run' } })
  }
  return buildResult(plan, await executeBuild(plan, docker))
}

/** Carries out a build plan, step by step in its order; every step it takes is remembered for the post step first. */
export async function executeBuild(plan: BuildPlan, docker: Docker): Promise<BuildOutcome> {
  const { config } = plan
  const retry = retryPolicy(config)
  const state: PostState = { keepBuilder: config.keepBuilder }
  // first: the QEMU image, the BuildKit image and base images are pulled from here on
  await logIn(plan.logins, docker, state, retry)
  const registry = new RegistryClient(config.image, config.registry, plan.credentials, 'push', retry)
  // a job that may not push fails here, in seconds, not after the build
  const publishCheck = await runPublishCheck(registry, plan.publishCheckSkipped)
  if (plan.qemu.argv) await installQemu(docker, plan.qemu.argv)
  mkdirSync(plan.workDir, { recursive: true, mode: 0o700 })
  try {
    await setUpBuilder(plan.builder, docker, state)
    const local = plan.localCache
    if (local) await group('Restore local build cache', () => restoreLocalCache(local.dir, local.key, local.prefix))
    // a local cache is read only when the restore brought one back
    const readsCache = !local || hasLocalCache(local.dir)
    const { built, attempt, readStalled } = await group(`Build ${plan.ref}`, () => buildWithRetries(plan, docker, retry, { readsCache, state }))
    const log = `${built.stdout}\n${built.stderr}`
    for (const warning of cacheWarnings(log, plan.cache, Boolean(built.stopped), config.cacheTimeoutMs)) core.warning(warning)
    const metadata = built.stopped ? '{}' : readFileSync(plan.metadataFile, 'utf8')
    const digest = await pushedDigest(plan, { attempt, built, metadata }, registry)
    if (local?.exportDir) {
      state.localCache = { dir: local.dir, exportDir: local.exportDir, key: local.key }
      saveState(state)
    }
    core.info(plan.push.push ? `Pushed ${plan.ref}@${digest}` : `Built ${plan.ref} (not pushed: ${plan.push.reason})`)
    return {
      digest,
      metadata,
      publishCheck,
      activity: cacheActivity(log),
      cacheRateLimited: plan.cache.backend === 'gha' && cacheRateLimited(log),
      ...(readStalled ? { cacheReadStalled: readStalled } : {})
    }
  } finally {
    rmSync(plan.workDir, { recursive: true, force: true })
  }
}

/**
 * Runs `docker buildx build` until it succeeds or no retry is left. Each failure decides the next
 * attempt (nextAttempt), whose argv the plan already holds; the policy decides whether there is one
 * and when. A cache read that stalls past cache-timeout is not a failure: the build runs again at
 * once without reading the cache, once, and that does not use up a retry.
 */
async function buildWithRetries(
  plan: BuildPlan,
  docker: Docker,
  retry: RetryPolicy,
  { readsCache, state }: { readsCache: boolean; state: PostState }
): Promise<{ built: DockerResult; attempt: Attempt; readStalled?: string }> {
  let attempt = plan.attempts.first
  let readStalled: string | undefined
  for (let retryNumber = 1; ;) {
    const planned = plan.attempts.argv[shapeOf(attempt)]!
    const argv = readsCache ? planned : withoutCacheFrom(planned)
    const bound = boundCache(plan.config.cacheTimeoutMs, { writesResult: attempt.output.kind !== 'none', boundReads: attempt.readCache })
    const built = await docker.run(argv, { stream: true, onLine: bound.onLine, env: plan.secrets.env }).finally(() => bound.dispose())
    if (built.stopped && bound.readStalled) {
      readStalled = bound.readStalled
      // the stalled import holds its BuildKit: a remote builder has no fresh twin to build on
      if (!plan.coldBuilder) throw new ActionError(cacheReadWarning(plan.cache, readStalled, plan.config.cacheTimeoutMs, 'remote'))
      core.warning(cacheReadWarning(plan.cache, readStalled, plan.config.cacheTimeoutMs))
      attempt = withoutCacheRead(attempt)
      core.info(CHANGE_NOTES['no-cache-read'])
      await setUpColdBuilder(plan.coldBuilder, docker, state)
      continue
    }
    if (built.code === 0 || built.stopped) return { built, attempt, ...(readStalled ? { readStalled } : {}) }
    const errorText = lastErrorLines(built.stderr || built.stdout)
    const next = nextAttempt(attempt, { log: `${built.stdout}\n${built.stderr}`, errorText })
    const error = new ClassifiedError(`docker buildx build failed: ${errorText}`, isFinal(next) ? next.final : 'transient')
    if (isFinal(next) || retryNumber > retry.retries) throw explainAuthFailure(error, plan.config.registry)
    const delay = retry.delay(retryNumber)
    retry.announce(error, retryNumber, delay, { warn: true, note: () => (next.change ? CHANGE_NOTES[next.change] : undefined) })
    await retry.pause(delay)
    attempt = next
    retryNumber++
  }
}

/**
 * What the arch tag now points at: our own push of the exported layout, else BuildKit's metadata
 * (or the registry, when the build was stopped during cache export, before buildx wrote it).
 */
async function pushedDigest(plan: BuildPlan, build: { attempt: Attempt; built: DockerResult; metadata: string }, registry: RegistryClient): Promise<string> {
  const { output } = build.attempt
  try {
    if (output.kind === 'layout') return await group(`Push ${plan.ref}`, () => pushLayout(registry, output.dir, plan.tag))
    if (!plan.push.push) return ''
    if (build.built.stopped) return (await registry.readBack(plan.tag)).digest
    return JSON.parse(build.metadata)['containerimage.digest'] ?? ''
  } catch (error) {
    throw explainAuthFailure(error, plan.config.registry)
  }
}
