import * as core from '@actions/core'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BaseConfig, BuildConfig, Credentials } from '../config/types.js'
import { ActionError, ClassifiedError } from '../model/errors.js'
import { dockerConfigDir, type Docker } from '../runtime/docker.js'
import { group } from '../runtime/log.js'
import { saveState, type PostState } from '../runtime/state.js'
import { RegistryClient } from './client.js'
import type { RetryPolicy } from './retry.js'

export function authHint(registry: string): string {
  return `check username and password, and give the job \`permissions: packages: write\` when pushing to ${registry} with GITHUB_TOKEN`
}

/** A refused registry call becomes one line that says what to do; anything else passes through. */
export function explainAuthFailure(error: unknown, registry: string): unknown {
  return error instanceof ClassifiedError && error.outcome === 'auth' ? new ActionError(`${error.message}: ${authHint(registry)}`) : error
}

/** Credentials a previous `docker login` stored in plain config.json (credential helpers are not read). */
export function credentialsFromDockerConfig(registry: string, env: NodeJS.ProcessEnv): Credentials | undefined {
  const file = join(dockerConfigDir(env), 'config.json')
  if (!existsSync(file)) return undefined
  try {
    const auths = JSON.parse(readFileSync(file, 'utf8')).auths ?? {}
    const entry = auths[registry] ?? (registry === 'docker.io' ? auths['https://index.docker.io/v1/'] : undefined)
    if (!entry?.auth) return undefined
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon < 0) return undefined
    const password = decoded.slice(colon + 1)
    core.setSecret(password)
    return { username: decoded.slice(0, colon), password }
  } catch {
    return undefined
  }
}

/** The credentials our own registry client uses: the inputs, or what `docker login` stored before. */
export function registryCredentials(config: BaseConfig, env: NodeJS.ProcessEnv): Credentials | undefined {
  return config.credentials.password ? config.credentials : credentialsFromDockerConfig(config.registry, env)
}

export function loginArgv(registry: string, username: string): string[] {
  return ['login', registry, '--username', username, '--password-stdin']
}

/** `docker login` with the secret on stdin; wrong credentials fail at once, a flaky registry is retried. */
export async function login(docker: Docker, registry: string, credentials: Credentials, retry: RetryPolicy): Promise<void> {
  const verifier = new RegistryClient(registry, registry, credentials)
  const attempt = async () => {
    try {
      await docker.mustRun(`docker login ${registry}`, loginArgv(registry, credentials.username), { input: credentials.password })
    } catch (error) {
      if (!(error instanceof ClassifiedError && error.outcome === 'auth')) throw error
      // docker also says 401 when a flaky registry made it retry without credentials: ask the registry
      // ourselves; a refusal ends it, anything else (an accepted ping, a flaky one) is worth another try
      await verifier.ping()
      throw new ClassifiedError(error.message, 'transient')
    }
  }
  try {
    await retry.run(attempt, { warn: true })
  } catch (error) {
    throw explainAuthFailure(error, registry)
  }
}

/**
 * Logs in before anything pulls (the QEMU image, the BuildKit image, base images): to the target
 * registry when pushing, and to Docker Hub, for its pull limits, whenever both Docker Hub inputs are
 * set, pull requests from the same repository included (they pull just as much). Forks never log in.
 */
export async function logins(
  config: BuildConfig,
  docker: Docker,
  { push, fromFork }: { push: boolean; fromFork: boolean },
  state: PostState,
  retry: RetryPolicy
): Promise<void> {
  const hub = config.dockerHub
  if (fromFork) {
    if (hub.username || hub.password) core.notice('Docker Hub login skipped: runs from forks never log in')
    return
  }
  const wanted: Array<[string, Credentials]> = []
  if (push) {
    if (config.credentials.password) wanted.push([config.registry, config.credentials])
    else core.notice(`password is empty: pushing to ${config.registry} with whatever login docker already has`)
  }
  if (hub.username && hub.password) {
    if (!wanted.some(([r]) => r === 'docker.io')) wanted.push(['docker.io', hub])
  } else if (hub.username || hub.password) {
    core.notice(`Docker Hub login skipped: ${hub.username ? 'dockerhub-token' : 'dockerhub-username'} is empty (as on fork pull requests)`)
  }
  if (wanted.length === 0) return
  await group('Login', async () => {
    for (const [registry, credentials] of wanted) {
      try {
        await login(docker, registry, credentials, retry)
      } catch (error) {
        // the Docker Hub login only lifts pull limits: without it the build may still work
        if (registry !== 'docker.io' || registry === config.registry) throw error
        core.warning(`Docker Hub login failed, going on without it (pulls may hit rate limits): ${(error as Error).message}`)
        continue
      }
      if (!config.dryRun) {
        state.logins = [...(state.logins ?? []), registry]
        saveState(state)
      }
      core.info(`${config.dryRun ? 'would log in' : 'logged in'} to ${registry} as ${credentials.username}`)
    }
  })
}
