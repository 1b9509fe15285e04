import * as core from '@actions/core'
import { existsSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'

/** @actions/cache is large and only `cache: local` needs it: load it on demand to keep start-up fast. */
async function actionsCache() {
  return import('@actions/cache')
}

export function localCacheKey(prefix: string, env: NodeJS.ProcessEnv): string {
  return `${prefix}${env.GITHUB_RUN_ID || Date.now()}-${env.GITHUB_RUN_ATTEMPT || '1'}`
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
