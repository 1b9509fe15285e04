import * as core from '@actions/core'
import { shouldRemoveBuilder } from './builder.js'
import { Docker } from './docker.js'
import { saveLocalCache } from './local-cache.js'
import { loadState } from './state.js'

/** Post entry (post-if: always()): save the local cache, log out, remove a builder this run created. Never fails the job. */
async function post(): Promise<void> {
  const state = loadState()
  const docker = new Docker(false)
  if (state.localCache) {
    await step('Save local build cache', () => saveLocalCache(state.localCache!.dir, state.localCache!.exportDir, state.localCache!.key))
  }
  for (const registry of state.logins ?? []) {
    await step(`Log out of ${registry}`, () => docker.mustRun(`docker logout ${registry}`, ['logout', registry]))
  }
  if (shouldRemoveBuilder(state.builderCreated, state.keepBuilder)) {
    await step(`Remove builder ${state.builderCreated}`, () => docker.mustRun('docker buildx rm', ['buildx', 'rm', state.builderCreated!]))
  }
}

async function step(title: string, fn: () => Promise<unknown>): Promise<void> {
  core.startGroup(title)
  try {
    await fn()
  } catch (error) {
    core.warning(`${title} failed: ${(error as Error).message}`)
  } finally {
    core.endGroup()
  }
}

post().catch((error: unknown) => core.warning(`post step: ${(error as Error).message}`))
