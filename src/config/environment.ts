import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * What the action reads from its environment, read once by the entry points. Nothing below them
 * looks at process.env: a plan is a function of this value, the inputs and the probes.
 */
export interface RunnerEnvironment {
  runnerTemp: string
  workspace: string
  /** nektos/act sets ACT=true */
  act: boolean
  /** the Actions cache service the runner hands to actions (absent outside a runner) */
  cacheService: { runtimeToken?: string; cacheUrl?: string; resultsUrl?: string }
  /** GitHub's REST API (GHES has its own) */
  apiUrl: string
  runId?: string
  runAttempt?: string
  /** an ssh agent is running (SSH_AUTH_SOCK) */
  sshAgent: boolean
  /** where the docker CLI keeps config.json, and what selects its context */
  dockerConfigDir: string
  dockerContext?: string
  dockerHost?: string
  /** BUILDX_NO_DEFAULT_ATTESTATIONS turns buildx's default provenance off */
  noDefaultAttestations: boolean
  /** a variable the user named (a build secret's `env=`); '' when unset */
  variable: (name: string) => string
}

export function readEnvironment(env: NodeJS.ProcessEnv, cwd = process.cwd()): RunnerEnvironment {
  const off = env.BUILDX_NO_DEFAULT_ATTESTATIONS
  return {
    runnerTemp: env.RUNNER_TEMP || tmpdir(),
    workspace: env.GITHUB_WORKSPACE || cwd,
    act: Boolean(env.ACT),
    cacheService: { runtimeToken: env.ACTIONS_RUNTIME_TOKEN, cacheUrl: env.ACTIONS_CACHE_URL, resultsUrl: env.ACTIONS_RESULTS_URL },
    apiUrl: env.GITHUB_API_URL || 'https://api.github.com',
    runId: env.GITHUB_RUN_ID,
    runAttempt: env.GITHUB_RUN_ATTEMPT,
    sshAgent: Boolean(env.SSH_AUTH_SOCK),
    dockerConfigDir: env.DOCKER_CONFIG || join(homedir(), '.docker'),
    dockerContext: env.DOCKER_CONTEXT || undefined,
    dockerHost: env.DOCKER_HOST || undefined,
    noDefaultAttestations: Boolean(off) && !/^(0|false)$/i.test(off ?? ''),
    variable: (name) => env[name] ?? ''
  }
}

/**
 * The runner hands the cache service's address and token only to actions; without them buildx drops
 * type=gha silently. Under act, ACTIONS_RESULTS_URL is its artifact server: only its cache server
 * (ACTIONS_CACHE_URL, on unless --no-cache-server) holds a cache.
 */
export function ghaCacheAvailable(env: RunnerEnvironment): boolean {
  const { runtimeToken, cacheUrl, resultsUrl } = env.cacheService
  if (env.act) return Boolean(runtimeToken && cacheUrl)
  return Boolean(runtimeToken && (cacheUrl || resultsUrl))
}

/**
 * Said once at the start under act, so a local run explains itself instead of failing or silently
 * doing less: where the cache goes, which arch builds natively, and what pushing needs there.
 */
export function actNotice(env: RunnerEnvironment, arch: string): string | undefined {
  if (!env.act) return undefined
  const cache = ghaCacheAvailable(env) ? "cache: gha goes to act's cache server" : 'cache: gha is off (act was started with --no-cache-server)'
  const machine = arch === 'arm64' ? 'arm64' : arch === 'x64' ? 'amd64' : arch
  return `Running under act: ${cache}; every platform builds on this ${machine} machine (the others under QEMU, as there are no native arm runners); pushing needs a registry this job can log in to (GITHUB_TOKEN only with -s GITHUB_TOKEN)`
}
