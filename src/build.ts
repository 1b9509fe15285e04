import * as core from '@actions/core'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { explainAuthFailure, logins, registryCredentials } from './auth.js'
import { decideBuilder, parseInspect } from './builder.js'
import { Docker, lastErrorLines, type DockerResult } from './docker.js'
import { ActionError } from './errors.js'
import type { GitHubContext } from './github-context.js'
import type { Config } from './inputs.js'
import { hasLocalCache, localCacheKey, restoreLocalCache } from './local-cache.js'
import {
  archImageTag,
  archRef,
  buildArgv,
  type BuildOutput,
  createBuilderArgv,
  decidePush,
  defaultProvenance,
  localCacheKeyPrefix,
  ociLabels,
  planCache,
  qemuInstallArgv
} from './plan.js'
import { formatDuration } from './duration.js'
import { archTag, formatPlatform } from './platform.js'
import { binfmtRegistered, decideQemu } from './qemu.js'
import { pushLayout } from './push.js'
import { RegistryClient } from './registry.js'
import { BuildProgress, cacheProblem, classifyBuildFailure, failedWhilePushing, refusedLegacyCacheProtocol } from './buildkit-log.js'
import { classifyDockerOutput, requestRetries, withRetries, type Backoff, type Outcome } from './retry.js'
import { saveState, type PostState } from './state.js'
import { writeSummary } from './summary.js'

/** Build mode: one platform, one `docker buildx build`, pushed as <image>:<sha>-<arch>. */
export async function runBuild(config: Config, github: GitHubContext, env: NodeJS.ProcessEnv): Promise<void> {
  const startedAt = Date.now()
  const startedAtIso = new Date(startedAt).toISOString()
  const platform = config.platform!
  const docker = new Docker(config.dryRun)
  const backoff: Backoff = { baseMs: config.retryDelayMs, capMs: 30_000 }
  const state: PostState = { keepBuilder: config.keepBuilder }
  const decision = decidePush(config.push, github)
  if (decision.warning) core.warning(decision.warning)
  const ref = archRef(config.image, config.sha, platform)
  const runnerTemp = env.RUNNER_TEMP || tmpdir()
  const cache = planCache(config, platform, decision.push, env, join(runnerTemp, 'brokkr-build-cache', config.cacheScope))
  if (cache.status === 'unavailable') core.warning(cache.note)
  const qemu = decideQemu(config, platform, process.arch, binfmtRegistered(platform))

  core.startGroup('Plan')
  core.info(`image ${ref} (${formatPlatform(platform)})`)
  core.info(`push: ${decision.push} (${decision.reason})`)
  core.info(`cache: ${cache.status === 'unavailable' ? 'gha unavailable, building without a cache' : cache.note}`)
  core.info(`qemu: ${qemu.install ? 'install' : 'no install'} (${qemu.reason})`)
  if (config.dryRun) core.info('dry-run: commands that change anything are printed, not run')
  core.endGroup()

  // first: the QEMU image, the BuildKit image and base images are pulled from here on
  await logins(config, docker, { push: decision.push, fromFork: github.fromFork }, state, backoff)
  if (qemu.install) {
    core.startGroup('QEMU')
    await docker.mustRun('installing the QEMU emulator', qemuInstallArgv(config.qemuImage, platform))
    core.endGroup()
  }
  const builder = await setUpBuilder(config, docker, env, state)

  const localKey = localCacheKey(localCacheKeyPrefix(config.cacheScope), env)
  if (cache.backend === 'local' && cache.localDir && !config.dryRun) {
    core.startGroup('Restore local build cache')
    await restoreLocalCache(cache.localDir, localKey, localCacheKeyPrefix(config.cacheScope))
    core.endGroup()
  }

  const tag = archImageTag(config.sha, platform)
  // a local cache is read only when the restore brought one back
  const includeCacheFrom = cache.backend !== 'local' || (cache.localDir !== undefined && hasLocalCache(cache.localDir))
  const workDir = mkdtempSync(join(runnerTemp, 'brokkr-build-'))
  let digest = ''
  let metadata = '{}'
  try {
    const argv = (output: BuildOutput, exportCache: boolean) =>
      buildArgv(config, platform, {
        builder,
        output,
        metadataFile: join(workDir, 'metadata.json'),
        labels: ociLabels(config, github, startedAtIso),
        cache: exportCache ? cache : { ...cache, to: [] },
        includeCacheFrom,
        defaultProvenance: defaultProvenance(env)
      })
    const { built, output } = await build(config, docker, ref, argv, decision.push ? { kind: 'push' } : { kind: 'none' }, join(workDir, 'oci'), backoff)
    const log = `${built.stdout}\n${built.stderr}`
    const problem = cacheProblem(log)
    if (cache.backend === 'gha' && refusedLegacyCacheProtocol(log)) core.warning(LEGACY_CACHE_HINT)
    else if (problem && cache.status === 'on') core.warning(`The ${cache.backend} build cache failed and the build went on without it: ${problem}`)
    if (built.stopped) {
      core.warning(
        `Cache export took longer than cache-timeout (${formatDuration(config.cacheTimeoutMs)}): stopped waiting for it after the image was written; the ${cache.backend} cache of this build may be incomplete`
      )
    } else if (!config.dryRun) {
      metadata = readFileSync(join(workDir, 'metadata.json'), 'utf8')
    }
    if (output.kind === 'layout') {
      core.startGroup(`Push ${ref}`)
      digest = await pushAndCheck(config, tag, output.dir, env, backoff)
      core.endGroup()
    } else if (decision.push && !config.dryRun) {
      // BuildKit's push succeeded: its metadata names what the tag now points at (the registry
      // does, when the build was stopped during cache export, before buildx wrote the metadata)
      digest = built.stopped ? await pushedDigest(config, tag, env, backoff) : (JSON.parse(metadata)['containerimage.digest'] ?? '')
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }

  if (cache.backend === 'local' && cache.localDir && cache.localExportDir && !config.dryRun) {
    state.localCache = { dir: cache.localDir, exportDir: cache.localExportDir, key: localKey }
    saveState(state)
  }

  const outputs: Record<string, string> = {
    image: config.image,
    tag,
    ref,
    digest,
    platform: formatPlatform(platform),
    arch: archTag(platform),
    'cache-scope': config.cacheScope,
    pushed: String(decision.push && !config.dryRun),
    metadata
  }
  for (const [name, value] of Object.entries(outputs)) core.setOutput(name, value)
  core.info(decision.push && !config.dryRun ? `Pushed ${ref}@${digest}` : `Built ${ref} (not pushed: ${config.dryRun ? 'dry-run' : decision.reason})`)

  await writeSummary(
    `${config.dryRun ? 'Dry run: ' : ''}Brokkr build ${config.component} ${formatPlatform(platform)}`,
    [
      ['image', config.image],
      ['platform', formatPlatform(platform)],
      ['tag', outputs.tag],
      ['digest', digest],
      ['pushed', `${outputs.pushed} (${decision.reason})`],
      ['cache', cache.status === 'on' ? `${cache.backend}, ${cache.note}` : `${cache.backend} (${cache.status})`],
      ['cache scope', config.cacheScope],
      ['execution', qemu.emulated ? `emulated (QEMU${qemu.install ? ', installed by this run' : ''})` : 'native'],
      ...(config.dryRun ? ([['commands', docker.planned.join('\n')]] as Array<[string, string]>) : [])
    ],
    startedAt
  )
}

/**
 * Reuses the docker context's builder, or an existing builder of ours, or creates (and remembers) one.
 * A builder this run tried to create is remembered before `buildx create` runs and removed at once
 * when creation fails: a half-made builder would be "reused" by the next run and fail it again.
 */
async function setUpBuilder(config: Config, docker: Docker, env: NodeJS.ProcessEnv, state: PostState): Promise<string> {
  core.startGroup('Builder')
  try {
    const inspected = config.driver === 'docker' ? undefined : await docker.probe(['buildx', 'inspect', config.builder])
    const builder = decideBuilder(config, env, inspected && inspected.code === 0 ? parseInspect(inspected.stdout) : undefined)
    if (builder.kind === 'conflict') throw new ActionError(builder.message)
    if (builder.kind === 'create') {
      if (!config.dryRun) {
        state.builderCreated = builder.name
        saveState(state)
      }
      try {
        await docker.mustRun(`creating builder ${builder.name}`, createBuilderArgv(config)!)
      } catch (error) {
        if (!config.dryRun) {
          await docker.run(['buildx', 'rm', builder.name])
          state.builderCreated = undefined
          saveState(state)
        }
        throw error
      }
    } else if (builder.kind === 'reuse' && !config.dryRun) {
      // a builder that cannot start fails here in one line, not after six build tries
      const started = await docker.run(['buildx', 'inspect', '--bootstrap', builder.name])
      if (started.code !== 0) {
        throw new ActionError(
          `builder: '${builder.name}' exists but does not start (${lastErrorLines(started.stderr || started.stdout)}); remove it with docker buildx rm ${builder.name} or pick another builder name`
        )
      }
    }
    core.info(`builder ${builder.name} (${builder.kind === 'create' ? 'created' : builder.kind === 'reuse' ? 'reused' : 'docker driver'})`)
    return builder.name
  } finally {
    core.endGroup()
  }
}

/** What the engine may refuse: the docker driver on the classic image store exports neither cache nor layouts. */
const NO_CACHE_EXPORT = /cache export is not supported/i
const NO_LAYOUT_EXPORT = /oci exporter is not supported|exporter "?oci"? is not supported|not supported for the docker driver/i

/**
 * Runs the build, retrying what is worth it. BuildKit's own push comes first; when the registry
 * fails it mid-push, the next try exports an OCI layout instead, for our request-by-request
 * pusher. An engine that cannot export cache or layouts is met halfway rather than failed.
 */
async function build(
  config: Config,
  docker: Docker,
  ref: string,
  argv: (output: BuildOutput, exportCache: boolean) => string[],
  first: BuildOutput,
  layoutDir: string,
  backoff: Backoff
): Promise<{ built: DockerResult; output: BuildOutput }> {
  let output = first
  let exportCache = true
  let layoutAllowed = true
  let next: 'layout' | 'no-cache-export' | 'push-again' | 'again' = 'again'
  const classify = (log: string, errorText: string): Outcome => {
    // a refused push stays refused whichever way we push
    if (classifyDockerOutput(errorText) === 'auth') return 'auth'
    if (exportCache && NO_CACHE_EXPORT.test(errorText)) next = 'no-cache-export'
    else if (output.kind === 'layout' && NO_LAYOUT_EXPORT.test(errorText)) next = 'push-again'
    else if (output.kind === 'push' && layoutAllowed && failedWhilePushing(log, errorText)) next = 'layout'
    else {
      next = 'again'
      return classifyBuildFailure(log, errorText)
    }
    return 'transient'
  }
  const steps = {
    layout: 'exporting an OCI layout to push request by request',
    'no-cache-export': 'this engine cannot export build cache (docker driver on the classic image store): building without --cache-to',
    'push-again': 'this engine cannot export an OCI layout: pushing with BuildKit again',
    again: 'layers come from cache'
  }
  // cache export comes after the result is written: past the bound, stop waiting for it once the result is out
  const boundedTry = () => {
    const progress = new BuildProgress()
    let timer: NodeJS.Timeout | undefined
    let overdue = false
    const onLine = (line: string, stop: () => void) => {
      progress.observe(line)
      if (progress.cacheExportStarted && timer === undefined && config.cacheTimeoutMs > 0) {
        timer = setTimeout(() => {
          overdue = true
          if (output.kind === 'none' || progress.outputWritten) stop()
        }, config.cacheTimeoutMs)
      }
      if (overdue && (output.kind === 'none' || progress.outputWritten)) stop()
    }
    return docker.mustRun('docker buildx build', argv(output, exportCache), { stream: true, classify, onLine }).finally(() => clearTimeout(timer))
  }
  core.startGroup(`Build ${ref}`)
  try {
    const built = await withRetries(boundedTry, {
      retries: config.retries,
      backoff,
      onRetry: (e, attempt, delay) => {
        if (next === 'layout') output = { kind: 'layout', dir: layoutDir }
        if (next === 'no-cache-export') exportCache = false
        if (next === 'push-again') {
          layoutAllowed = false
          output = { kind: 'push' }
        }
        core.warning(`${e.message}; build try ${attempt + 1} in ${delay} ms (${steps[next]})`)
      }
    })
    return { built, output }
  } catch (error) {
    throw explainAuthFailure(error, config.registry)
  } finally {
    core.endGroup()
  }
}

/** Pushes the exported layout under the arch tag, then reads the tag back: it must be what we pushed. */
async function pushAndCheck(config: Config, tag: string, layoutDir: string, env: NodeJS.ProcessEnv, backoff: Backoff): Promise<string> {
  const client = new RegistryClient(config.image, config.registry, registryCredentials(config, env), 'push')
  const retry = requestRetries(config.retries, backoff, core.info)
  try {
    const digest = await pushLayout(client, layoutDir, tag, retry)
    const back = await withRetries(() => client.manifest(tag), requestRetries(config.retries, backoff, core.info, true))
    if (back.digest !== digest) throw new ActionError(`${config.image}:${tag} reads back as ${back.digest}, not the pushed ${digest}`)
    return digest
  } catch (error) {
    throw explainAuthFailure(error, config.registry)
  }
}

/** What the registry holds under the arch tag BuildKit just pushed. */
async function pushedDigest(config: Config, tag: string, env: NodeJS.ProcessEnv, backoff: Backoff): Promise<string> {
  const client = new RegistryClient(config.image, config.registry, registryCredentials(config, env))
  try {
    return (await withRetries(() => client.manifest(tag), requestRetries(config.retries, backoff, core.info, true))).digest
  } catch (error) {
    throw explainAuthFailure(error, config.registry)
  }
}

/** Said once when the cache service turned down buildx's v1 protocol. */
const LEGACY_CACHE_HINT =
  'The GitHub Actions cache service refused the legacy v1 protocol (switched off on 2025-04-15), so this build ran without its gha cache: ' +
  'the v2 protocol needs buildx 0.21 or newer and BuildKit 0.20 or newer (a docker-container builder on moby/buildkit:buildx-stable-1, or Docker Engine 28 for the docker driver); ' +
  'update buildx and the builder, or use cache: registry'
