import * as core from '@actions/core'
import { shouldRemoveBuilder } from './buildx/builder.js'
import { Docker } from './runtime/docker.js'
import { saveLocalCache } from './buildx/cache.js'
import { group } from './runtime/log.js'
import { loadState } from './runtime/state.js'

/** Post entry (post-if: always()): save the local cache, log out, remove a builder this run created. Never fails the job. */
async function post(): Promise<void> {
  const state = loadState()
  const docker = new Docker()
  if (state.localCache) {
    await step('Save local build cache', () => saveLocalCache(state.localCache!.dir, state.localCache!.exportDir, state.localCache!.key))
  }
  for (const registry of state.logins ?? []) {
    await step(`Log out of ${registry}`, () => docker.mustRun(`docker logout ${registry}`, ['logout', registry]))
  }
  if (state.coldBuilder) {
    await step(`Remove builder ${state.coldBuilder}`, () => docker.mustRun('docker buildx rm', ['buildx', 'rm', state.coldBuilder!]))
  }
  if (shouldRemoveBuilder(state.builderCreated, state.keepBuilder)) {
    await step(`Remove builder ${state.builderCreated}`, () => docker.mustRun('docker buildx rm', ['buildx', 'rm', state.builderCreated!]))
  }
}

/** One cleanup step in its own group; a failure is a warning, after the group is closed. */
async function step(title: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await group(title, fn)
  } catch (error) {
    core.warning(`${title} failed: ${(error as Error).message}`)
  }
}

post().catch((error: unknown) => core.warning(`post step: ${(error as Error).message}`))
