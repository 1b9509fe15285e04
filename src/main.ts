import * as core from '@actions/core'
import { context } from '@actions/github'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { actNotice, readEnvironment } from './config/environment.js'
import { parseConfig } from './config/parse.js'
import { inlineSecretValues } from './config/secrets.js'
import { ActionError, ClassifiedError, InputError } from './model/errors.js'
import { toGitHubContext } from './model/github.js'
import { runBuild } from './run/build.js'
import { runManifest } from './run/manifest.js'
import { stopAll } from './runtime/process.js'
import { reportResult } from './runtime/report.js'

/** Main entry: read the environment and every input once, run the mode, then report its outputs and summary. */
async function main(): Promise<void> {
  const startedAt = Date.now()
  // mask before anything can print them
  for (const secret of ['password', 'dockerhub-token', 'github-token']) {
    const value = core.getInput(secret)
    if (value) core.setSecret(value)
  }
  for (const value of inlineSecretValues(core.getInput('secrets'))) core.setSecret(value)
  const env = readEnvironment(process.env)
  const github = toGitHubContext(context, process.env)
  const config = parseConfig((name) => core.getInput(name), {
    github,
    exists: (path) => existsSync(resolve(env.workspace, path))
  })
  // known before any work: a failed run still names its image, as it always has
  core.setOutput('image', config.image)
  const act = actNotice(env, process.arch)
  if (act) core.info(act)
  const result = config.mode === 'build' ? await runBuild(config, github, env, startedAt) : await runManifest(config, github, env)
  await reportResult(result, startedAt)
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
