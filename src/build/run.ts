import * as core from '@actions/core'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BuildConfig } from '../config/types.js'
import { archImageTag, archRef } from '../model/image.js'
import { archTag, formatPlatform } from '../model/platform.js'
import { decidePush } from '../model/push.js'
import { logins } from '../registry/auth.js'
import { Docker } from '../runtime/docker.js'
import type { GitHubContext } from '../runtime/github-context.js'
import { group } from '../runtime/log.js'
import type { RunResult } from '../runtime/result.js'
import { saveState, type PostState } from '../runtime/state.js'
import { runBuildAttempts } from './run-attempts.js'
import { setUpBuilder } from './builder.js'
import { cacheActivity } from './buildkit-log.js'
import { cacheWarnings, decideCacheWrite, hasLocalCache, localCacheKey, localCacheKeyPrefix, planCache, restoreLocalCache } from './cache.js'
import { buildArgv, defaultProvenance, ociLabels } from './plan.js'
import { pushedDigest, publishLayout } from './publish.js'
import { binfmtRegistered, decideQemu, installQemu } from './qemu.js'
import { planSecrets } from './secrets.js'
import { retryPolicy } from '../registry/retry.js'
import { describePublishCheck, publishCheckSkipped, runPublishCheck } from '../registry/publish-check.js'

/** Build mode: one platform, one `docker buildx build`, pushed as <image>:<sha>-<arch>. */
export async function runBuild(config: BuildConfig, github: GitHubContext, env: NodeJS.ProcessEnv, startedAt = Date.now()): Promise<RunResult> {
  const { platform } = config
  const docker = new Docker(config.dryRun)
  const retry = retryPolicy(config)
  const state: PostState = { keepBuilder: config.keepBuilder }
  const decision = decidePush(config.push, github)
  if (decision.warning) core.warning(decision.warning)
  const ref = archRef(config.image, config.sha, platform)
  const runnerTemp = env.RUNNER_TEMP || tmpdir()
  const cacheWrite = decideCacheWrite(config.cacheWrite, github)
  const cache = planCache(config, decision.push, env, join(runnerTemp, 'brokkr-build-cache', config.cacheScope), cacheWrite.write)
  if (cache.status === 'unavailable') core.warning(cache.note)
  const qemu = decideQemu(config, process.arch, binfmtRegistered(platform))
  // a bad ssh source fails here, before any docker command; values are masked before anything prints
  const secrets = planSecrets(config.secrets, config.ssh, env, github.fromFork)
  for (const value of secrets.values) core.setSecret(value)
  for (const skipped of secrets.skipped) (github.fromFork ? core.notice : core.warning)(skipped)
  const publishSkipped = publishCheckSkipped({ enabled: config.publishCheck, push: decision.push, dryRun: config.dryRun })

  await group('Plan', () => {
    core.info(`image ${ref} (${formatPlatform(platform)})`)
    core.info(`push: ${decision.push} (${decision.reason})`)
    core.info(`publish check: ${publishSkipped ? `skipped (${publishSkipped})` : 'before the build'}`)
    core.info(`cache: ${cache.status === 'unavailable' ? 'gha unavailable, building without a cache' : `${cache.note}, ${cacheWrite.reason}`}`)
    if (secrets.described.length) core.info(`secrets: ${secrets.described.join(', ')}`)
    core.info(`qemu: ${qemu.install ? 'install' : 'no install'} (${qemu.reason})`)
    if (config.dryRun) core.info('dry-run: commands that change anything are printed, not run')
  })

  // first: the QEMU image, the BuildKit image and base images are pulled from here on
  await logins(config, docker, { push: decision.push, fromFork: github.fromFork }, state, retry)
  // a job that may not push fails here, in seconds, not after the build
  const publish = await runPublishCheck(config, publishSkipped, env, retry)
  if (qemu.install) await installQemu(docker, config)
  const builder = await setUpBuilder(config, docker, env, state)

  const localKey = localCacheKey(localCacheKeyPrefix(config.cacheScope), env)
  const localDir = cache.backend === 'local' && !config.dryRun ? cache.localDir : undefined
  if (localDir) await group('Restore local build cache', () => restoreLocalCache(localDir, localKey, localCacheKeyPrefix(config.cacheScope)))

  const tag = archImageTag(config.sha, platform)
  // a local cache is read only when the restore brought one back
  const includeCacheFrom = cache.backend !== 'local' || (cache.localDir !== undefined && hasLocalCache(cache.localDir))
  const workDir = mkdtempSync(join(runnerTemp, 'brokkr-build-'))
  let digest = ''
  let metadata = '{}'
  let activity: ReturnType<typeof cacheActivity> | undefined
  try {
    const labels = ociLabels(config, github, new Date(startedAt).toISOString())
    const { built, attempt } = await runBuildAttempts(
      config,
      docker,
      ref,
      decision.push,
      join(workDir, 'oci'),
      retry,
      (a) =>
        buildArgv(config, {
          builder,
          output: a.output,
          metadataFile: join(workDir, 'metadata.json'),
          labels,
          cache: a.exportCache ? cache : { ...cache, to: [] },
          includeCacheFrom,
          defaultProvenance: defaultProvenance(env),
          secretArgs: secrets.args
        }),
      secrets.env
    )
    activity = cacheActivity(`${built.stdout}\n${built.stderr}`)
    for (const warning of cacheWarnings(`${built.stdout}\n${built.stderr}`, cache, Boolean(built.stopped), config.cacheTimeoutMs)) core.warning(warning)
    if (!built.stopped && !config.dryRun) metadata = readFileSync(join(workDir, 'metadata.json'), 'utf8')
    if (attempt.output.kind === 'layout') {
      const dir = attempt.output.dir
      digest = await group(`Push ${ref}`, () => publishLayout(config, tag, dir, env, retry))
    } else if (decision.push && !config.dryRun) {
      // BuildKit's push succeeded: its metadata names what the tag now points at (the registry
      // does, when the build was stopped during cache export, before buildx wrote the metadata)
      digest = built.stopped ? await pushedDigest(config, tag, env, retry) : (JSON.parse(metadata)['containerimage.digest'] ?? '')
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }

  if (cache.backend === 'local' && cache.localDir && cache.localExportDir && !config.dryRun) {
    state.localCache = { dir: cache.localDir, exportDir: cache.localExportDir, key: localKey }
    saveState(state)
  }

  const pushed = decision.push && !config.dryRun
  core.info(pushed ? `Pushed ${ref}@${digest}` : `Built ${ref} (not pushed: ${config.dryRun ? 'dry-run' : decision.reason})`)
  return {
    outputs: {
      image: config.image,
      tag,
      ref,
      digest,
      platform: formatPlatform(platform),
      arch: archTag(platform),
      'cache-scope': config.cacheScope,
      pushed: String(pushed),
      metadata
    },
    summary: {
      title: `${config.dryRun ? 'Dry run: ' : ''}Brokkr build ${config.component} ${formatPlatform(platform)}`,
      rows: [
        ['image', config.image],
        ['platform', formatPlatform(platform)],
        ['tag', tag],
        ['digest', digest],
        ['pushed', `${pushed} (${decision.reason})`],
        ['publish check', describePublishCheck(publish)],
        ['cache', cache.status === 'on' ? `${cache.backend}, ${cache.note}` : `${cache.backend} (${cache.status})`],
        ['cache scope', config.cacheScope],
        ...(activity && activity.steps > 0 ? ([['cache activity', describeActivity(activity, cache.to.length > 0)]] as Array<[string, string]>) : []),
        ...(secrets.described.length ? ([['secrets', secrets.described.join(', ')]] as Array<[string, string]>) : []),
        ['execution', qemu.emulated ? `emulated (QEMU${qemu.install ? ', installed by this run' : ''})` : 'native'],
        ...(config.dryRun ? ([['commands', docker.planned.join('\n')]] as Array<[string, string]>) : [])
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
