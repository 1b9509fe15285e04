import * as core from '@actions/core'
import { context } from '@actions/github'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { runBuild } from './build.js'
import { ActionError, InputError } from './errors.js'
import { toGitHubContext } from './github-context.js'
import { parseConfig } from './inputs.js'
import { runManifest } from './manifest.js'
import { stopAll } from './process.js'
import { ClassifiedError } from './retry.js'

/** Main entry: read and validate every input once, then hand a typed config to the mode's orchestrator. */
async function main(): Promise<void> {
  // mask before anything can print them
  for (const secret of ['password', 'dockerhub-token']) {
    const value = core.getInput(secret)
    if (value) core.setSecret(value)
  }
  const github = toGitHubContext(context, process.env)
  const workspace = process.env.GITHUB_WORKSPACE || process.cwd()
  const config = parseConfig((name) => core.getInput(name), {
    github,
    exists: (path) => existsSync(resolve(workspace, path))
  })
  if (config.mode === 'build') await runBuild(config, github, process.env)
  else await runManifest(config, github, process.env)
}

/**
 * Cancellation: the runner sends SIGINT, then SIGTERM. Stop the build with everything docker started
 * (buildx runs in a process group of its own and would go on), then fail; the post step cleans up.
 */
let cancelling = false
function cancel(signal: string): void {
  if (cancelling) return
  cancelling = true
  core.info(`${signal}: the job is being cancelled; stopping docker and everything it started`)
  void stopAll().finally(() => {
    core.setFailed(`cancelled (${signal}); the post step removes the builder and logs out`)
    process.exit(1)
  })
}
process.on('SIGINT', () => cancel('SIGINT'))
process.on('SIGTERM', () => cancel('SIGTERM'))

main().catch((error: unknown) => {
  // user-facing failures are one line; anything else keeps its stack in the debug log
  const known = error instanceof InputError || error instanceof ActionError || error instanceof ClassifiedError
  if (!known && error instanceof Error && error.stack) core.debug(error.stack)
  core.setFailed(error instanceof Error ? error.message : String(error))
})
