import * as core from '@actions/core'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BaseConfig, BuildConfig, Credentials } from '../config/types.js'
import { ActionError, ClassifiedError } from '../model/errors.js'
import type { Docker } from '../runtime/docker.js'
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
export function credentialsFromDockerConfig(registry: string, dockerConfigDir: string): Credentials | undefined {
  const file = join(dockerConfigDir, 'config.json')
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
export function registryCredentials(config: BaseConfig & { dockerHub?: Credentials }, dockerConfigDir: string): Credentials | undefined {
  if (config.credentials.password) return config.credentials
  // pushing to Docker Hub with only the Docker Hub inputs: the login this run makes is the one to use
  if (config.registry === 'docker.io' && config.dockerHub?.username && config.dockerHub.password) return config.dockerHub
  return credentialsFromDockerConfig(config.registry, dockerConfigDir)
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

/** One `docker login` the run makes; an optional one (Docker Hub, for pull limits) may fail without failing the job. */
export interface LoginStep {
  registry: string
  credentials: Credentials
  optional: boolean
}

/**
 * Whom to log in to before anything pulls (the QEMU image, the BuildKit image, base images): the
 * target registry when pushing, and Docker Hub, for its pull limits, whenever both Docker Hub inputs
 * are set, pull requests from the same repository included (they pull just as much). Forks never
 * log in. Returns the logins and what to say about the ones left out.
 */
export function planLogins(config: BuildConfig, push: boolean, fromFork: boolean): { logins: LoginStep[]; notices: string[] } {
  const hub = config.dockerHub
  const notices: string[] = []
  if (fromFork) {
    if (hub.username || hub.password) notices.push('Docker Hub login skipped: runs from forks never log in')
    return { logins: [], notices }
  }
  const logins: LoginStep[] = []
  if (push) {
    if (config.credentials.password) logins.push({ registry: config.registry, credentials: config.credentials, optional: false })
    else notices.push(`password is empty: pushing to ${config.registry} with whatever login docker already has`)
  }
  if (hub.username && hub.password) {
    // only lifting pull limits is optional: a login to the target registry must work
    if (!logins.some((l) => l.registry === 'docker.io')) logins.push({ registry: 'docker.io', credentials: hub, optional: config.registry !== 'docker.io' })
  } else if (hub.username || hub.password) {
    notices.push(`Docker Hub login skipped: ${hub.username ? 'dockerhub-token' : 'dockerhub-username'} is empty (as on fork pull requests)`)
  }
  return { logins, notices }
}

/** Runs the planned logins; each one is remembered for the post step's logout as soon as it succeeded. */
export async function logIn(logins: LoginStep[], docker: Docker, state: PostState, retry: RetryPolicy): Promise<void> {
  if (logins.length === 0) return
  await group('Login', async () => {
    for (const { registry, credentials, optional } of logins) {
      try {
        await login(docker, registry, credentials, retry)
      } catch (error) {
        if (!optional) throw error
        core.warning(`Docker Hub login failed, going on without it (pulls may hit rate limits): ${(error as Error).message}`)
        continue
      }
      state.logins = [...(state.logins ?? []), registry]
      saveState(state)
      core.info(`logged in to ${registry} as ${credentials.username}`)
    }
  })
}
