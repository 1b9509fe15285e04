import * as core from '@actions/core'
import { existsSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { BuildConfig, CacheWrite } from '../config/types.js'
import { formatDuration } from '../model/duration.js'
import { archTag } from '../model/platform.js'
import type { RunnerEnvironment } from '../config/environment.js'
import { isPullRequestEvent, type GitHubContext } from '../model/github.js'
import { BuildProgress, CacheReads, cacheProblem, cacheRateLimited, refusedLegacyCacheProtocol } from './buildkit-log.js'

// The build cache, all of it: which backend and where, the gha service check, the local cache's
// restore and save, the bound on cache reads and export, and what a broken cache is reported as.

export type CacheStatus = 'on' | 'unavailable' | 'off'

export interface CachePlan {
  backend: BuildConfig['cache']
  status: CacheStatus
  from: string[]
  to: string[]
  /** cache: local: directory restored from the Actions cache, and the fresh one this build exports to */
  localDir?: string
  localExportDir?: string
  note: string
}

/**
 * Whether this run writes the cache. On pull requests `auto` only reads: a pull request's entries
 * are visible to that pull request alone, yet count against the repository's 10 GB and its upload
 * rate, and evict the base branch's entries that every pull request reads.
 */
export function decideCacheWrite(setting: CacheWrite, github: GitHubContext): { write: boolean; reason: string } {
  if (setting !== 'auto') return { write: setting === 'true', reason: `cache-write: ${setting}` }
  return isPullRequestEvent(github.eventName)
    ? { write: false, reason: 'read only on pull requests' }
    : { write: true, reason: `written on ${github.eventName || 'this event'}` }
}

export interface CacheSituation {
  push: boolean
  /** from decideCacheWrite */
  write: boolean
  /** the runner handed out the Actions cache service (ghaCacheAvailable) */
  ghaAvailable: boolean
  /** where cache: local keeps its directory */
  localDir: string
}

export function planCache(config: BuildConfig, { push, write, ghaAvailable, localDir }: CacheSituation): CachePlan {
  const scope = config.cacheScope
  const mode = `mode=${config.cacheMode}`
  const readOnly = write ? '' : ' (read only)'
  switch (config.cache) {
    case 'none':
      return { backend: 'none', status: 'off', from: [], to: [], note: 'none' }
    case 'gha':
      if (!ghaAvailable) {
        return {
          backend: 'gha',
          status: 'unavailable',
          from: [],
          to: [],
          note: 'cache: gha was asked for, but the GitHub Actions cache service is not available (no ACTIONS_RUNTIME_TOKEN and ACTIONS_CACHE_URL/ACTIONS_RESULTS_URL; act runs its cache server unless started with --no-cache-server); building without a cache'
        }
      }
      return {
        backend: 'gha',
        status: 'on',
        from: [`type=gha,scope=${scope}`],
        to: write ? [`type=gha,scope=${scope},${mode},ignore-error=true`] : [],
        note: `gha scope ${scope}${readOnly}`
      }
    case 'registry': {
      const ref = `${config.image}:buildcache-${archTag(config.platform)}`
      return {
        backend: 'registry',
        status: 'on',
        from: [`type=registry,ref=${ref}`],
        // writing the cache needs the login that only pushing builds do
        to: push && write ? [`type=registry,ref=${ref},${mode},ignore-error=true`] : [],
        note: `registry ${ref}${!push ? ' (read only: not pushing)' : readOnly}`
      }
    }
    case 'local': {
      const exportDir = `${localDir}-next`
      return {
        backend: 'local',
        status: 'on',
        from: [`type=local,src=${localDir}`],
        // a fresh directory each build, swapped in by the post step, so old blobs do not pile up
        to: write ? [`type=local,dest=${exportDir},${mode},ignore-error=true`] : [],
        localDir,
        localExportDir: write ? exportDir : undefined,
        note: write ? `local ${localDir}, saved to the Actions cache as ${localCacheKeyPrefix(scope)}*` : `local ${localDir}${readOnly}`
      }
    }
  }
}

export function localCacheKeyPrefix(scope: string): string {
  return `brokkr-buildx-${scope}-`
}

export function localCacheKey(prefix: string, env: Pick<RunnerEnvironment, 'runId' | 'runAttempt'>): string {
  return `${prefix}${env.runId || Date.now()}-${env.runAttempt || '1'}`
}

/** @actions/cache is large and only `cache: local` needs it: load it on demand to keep start-up fast. */
async function actionsCache() {
  return import('@actions/cache')
}

/** Restores the newest cache saved under the prefix; a miss or an outage only means a cold build. */
export async function restoreLocalCache(dir: string, key: string, prefix: string): Promise<string | undefined> {
  const cache = await actionsCache()
  if (!cache.isFeatureAvailable()) {
    core.warning('cache: local needs the GitHub Actions cache service, which is not available here; building without a cache')
    return undefined
  }
  try {
    const hit = await cache.restoreCache([dir], key, [prefix])
    core.info(hit ? `Restored local build cache ${hit} into ${dir}` : `No local build cache under ${prefix}* yet`)
    return hit
  } catch (error) {
    core.warning(`Restoring the local build cache failed, building without it: ${(error as Error).message}`)
    return undefined
  }
}

export function hasLocalCache(dir: string): boolean {
  return existsSync(join(dir, 'index.json'))
}

/** Post step: the fresh export replaces the restored directory, then is saved under a new key. */
export async function saveLocalCache(dir: string, exportDir: string, key: string): Promise<void> {
  if (!hasLocalCache(exportDir)) {
    core.info(`No exported build cache in ${exportDir}; nothing to save`)
    return
  }
  rmSync(dir, { recursive: true, force: true })
  renameSync(exportDir, dir)
  const cache = await actionsCache()
  try {
    const id = await cache.saveCache([dir], key)
    core.info(id !== -1 ? `Saved local build cache as ${key}` : `Local build cache ${key} was not saved`)
  } catch (error) {
    core.warning(`Saving the local build cache failed (the next build will be colder): ${(error as Error).message}`)
  }
}

/**
 * The build's wait on its cache, bounded by `timeoutMs` both ways. Reading (`boundReads`, for a
 * build that reads the cache): a cache read that makes no progress for that long stops the build
 * (`readStalled` then names the read), to be run again without reading the cache. Export comes after the result is written: past `timeoutMs`, stop
 * waiting for it once the result is out (at once when there is no result to write). Feed it every
 * build log line.
 */
export function boundCache(timeoutMs: number, o: { writesResult: boolean; boundReads: boolean }) {
  const { writesResult, boundReads } = o
  const progress = new BuildProgress()
  const reads = new CacheReads()
  let exportTimer: NodeJS.Timeout | undefined
  let readTimer: NodeJS.Timeout | undefined
  let overdue = false
  let readStalled: string | undefined
  const resultOut = () => !writesResult || progress.outputWritten
  // (re)armed on every line: fires when the open reads have been idle for timeoutMs
  const watchReads = (stop: () => void) => {
    clearTimeout(readTimer)
    const idle = reads.idleFor(Date.now())
    if (idle === undefined || timeoutMs <= 0 || readStalled || !boundReads) return
    readTimer = setTimeout(
      () => {
        if ((reads.idleFor(Date.now()) ?? 0) < timeoutMs) return watchReads(stop)
        readStalled = reads.reading
        stop()
      },
      Math.max(0, timeoutMs - idle)
    )
  }
  return {
    onLine(line: string, stop: () => void): void {
      progress.observe(line)
      reads.observe(line, Date.now())
      watchReads(stop)
      if (progress.cacheExportStarted && exportTimer === undefined && timeoutMs > 0) {
        exportTimer = setTimeout(() => {
          overdue = true
          if (resultOut()) stop()
        }, timeoutMs)
      }
      if (overdue && resultOut()) stop()
    },
    /** the cache read that stalled and stopped the build, if one did */
    get readStalled(): string | undefined {
      return readStalled
    },
    dispose(): void {
      clearTimeout(exportTimer)
      clearTimeout(readTimer)
    }
  }
}

/**
 * Said when a stalled cache read stopped the build, before it runs again without the cache on a
 * fresh builder; or, for a remote builder (`remote`), why the run ends instead.
 */
export function cacheReadWarning(cache: CachePlan, stalled: string, timeoutMs: number, remote?: 'remote'): string {
  const what = `Reading the ${cache.backend} build cache made no progress for cache-timeout (${formatDuration(timeoutMs)}) at "${stalled.slice(0, 120)}"`
  if (remote) {
    return `${what}: the build was stopped. The stalled read holds the remote builder's BuildKit until its downloads give up, so it cannot build again now; rerun the job later, or with cache: none until the cache service recovers`
  }
  return (
    `${what}: the build was stopped and runs again without the cache on a fresh builder, so this image is built without cache hits. ` +
    'The cache service may be failing; if it keeps happening, set cache: none until it recovers'
  )
}

/** Said once when the cache service turned down buildx's v1 protocol. */
const LEGACY_CACHE_HINT =
  'The GitHub Actions cache service refused the legacy v1 protocol (switched off on 2025-04-15), so this build ran without its gha cache: ' +
  'the v2 protocol needs buildx 0.21 or newer and BuildKit 0.20 or newer (a docker-container builder on moby/buildkit:buildx-stable-1, or Docker Engine 28 for the docker driver); ' +
  'update buildx and the builder, or use cache: registry'

/** What a finished build's log says about its cache, as warnings (ignore-error=true keeps them out of the exit code). */
export function cacheWarnings(log: string, cache: CachePlan, stoppedExport: boolean, cacheTimeoutMs: number): string[] {
  // one warning that says what happened and what to do, rather than its symptoms one by one
  if (cache.backend === 'gha' && cacheRateLimited(log)) {
    const stopped = stoppedExport ? `; its cache export was stopped after cache-timeout (${formatDuration(cacheTimeoutMs)})` : ''
    return [
      `The GitHub Actions cache refused this build's new entries: a repository may create at most 200 cache entries a minute (HTTP 429, resource_exhausted)${stopped}. ` +
        'The image was pushed; its cache is incomplete. Write fewer entries: cache-mode: min, or fewer cache scopes per workflow run'
    ]
  }
  const warnings: string[] = []
  const problem = cacheProblem(log)
  if (cache.backend === 'gha' && refusedLegacyCacheProtocol(log)) warnings.push(LEGACY_CACHE_HINT)
  else if (problem && cache.status === 'on') warnings.push(`The ${cache.backend} build cache failed and the build went on without it: ${problem}`)
  if (stoppedExport) {
    warnings.push(
      `Cache export took longer than cache-timeout (${formatDuration(cacheTimeoutMs)}): stopped waiting for it after the image was written; the ${cache.backend} cache of this build may be incomplete`
    )
  }
  return warnings
}
