import { isPullRequestEvent, type GitHubContext } from './github-context.js'
import type { Config } from './inputs.js'
import { archTag, formatPlatform, type Platform } from './platform.js'
import { autoTags } from './tags.js'

export interface PushDecision {
  push: boolean
  reason: string
  /** set when the user asked for something we refuse */
  warning?: string
}

/** Events on which `push: auto` publishes: code that landed, or a person asked for it. */
const PUSH_EVENTS = new Set(['push', 'release', 'workflow_dispatch', 'schedule', 'repository_dispatch', 'merge_group'])

export function decidePush(setting: Config['push'], github: GitHubContext): PushDecision {
  if (setting === 'false') return { push: false, reason: 'push: false' }
  if (isPullRequestEvent(github.eventName) || github.fromFork) {
    const why = github.fromFork ? 'runs from a fork' : `${github.eventName} event`
    return {
      push: false,
      reason: `${why}: pull requests and forks never log in or push`,
      warning: setting === 'true' ? `push: true is ignored: ${why}; pull requests and forks never log in or push` : undefined
    }
  }
  if (setting === 'true') return { push: true, reason: 'push: true' }
  return PUSH_EVENTS.has(github.eventName)
    ? { push: true, reason: `${github.eventName} event` }
    : { push: false, reason: `push: auto does not publish on ${github.eventName || 'an unknown'} event` }
}

/** The per-arch tag, `<sha>-<arch>`: what build mode pushes and manifest mode waits for. */
export function archImageTag(sha: string, platform: Platform): string {
  return `${sha}-${archTag(platform)}`
}

export function archRef(image: string, sha: string, platform: Platform): string {
  return `${image}:${archImageTag(sha, platform)}`
}

/** The version label: the release for v* tags, else the branch, else the sha. */
export function versionLabel(github: GitHubContext, sha: string): string {
  const auto = autoTags(github)
  return auto[0] ?? sha
}

export function ociLabels(config: Config, github: GitHubContext, created: string): string[] {
  const source = github.repository ? `${github.serverUrl}/${github.repository}` : ''
  const ours = [
    source && `org.opencontainers.image.source=${source}`,
    `org.opencontainers.image.revision=${config.sha}`,
    `org.opencontainers.image.created=${created}`,
    `org.opencontainers.image.title=${config.image.split('/').pop()}`,
    `org.opencontainers.image.version=${versionLabel(github, config.sha)}`
  ].filter((l): l is string => Boolean(l))
  // the user's labels come last so they win over ours
  return [...ours, ...config.labels]
}

export type CacheStatus = 'on' | 'unavailable' | 'off'

export interface CachePlan {
  backend: Config['cache']
  status: CacheStatus
  from: string[]
  to: string[]
  /** cache: local: directory restored from the Actions cache, and the fresh one this build exports to */
  localDir?: string
  localExportDir?: string
  note: string
}

/** The runner hands the cache service's address and token only to actions; without them buildx drops type=gha silently. */
export function ghaCacheAvailable(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.ACTIONS_RUNTIME_TOKEN && (env.ACTIONS_CACHE_URL || env.ACTIONS_RESULTS_URL))
}

export function planCache(config: Config, platform: Platform, push: boolean, env: NodeJS.ProcessEnv, localDir: string): CachePlan {
  const scope = config.cacheScope
  switch (config.cache) {
    case 'none':
      return { backend: 'none', status: 'off', from: [], to: [], note: 'none' }
    case 'gha':
      if (!ghaCacheAvailable(env)) {
        return {
          backend: 'gha',
          status: 'unavailable',
          from: [],
          to: [],
          note: 'cache: gha was asked for, but the GitHub Actions cache service is not available (no ACTIONS_RUNTIME_TOKEN and ACTIONS_CACHE_URL/ACTIONS_RESULTS_URL; under act, pass --artifact-server-path); building without a cache'
        }
      }
      return {
        backend: 'gha',
        status: 'on',
        from: [`type=gha,scope=${scope}`],
        to: [`type=gha,scope=${scope},mode=max,ignore-error=true`],
        note: `gha scope ${scope}`
      }
    case 'registry': {
      const ref = `${config.image}:buildcache-${archTag(platform)}`
      return {
        backend: 'registry',
        status: 'on',
        from: [`type=registry,ref=${ref}`],
        // writing the cache needs the login that only pushing builds do
        to: push ? [`type=registry,ref=${ref},mode=max,ignore-error=true`] : [],
        note: `registry ${ref}${push ? '' : ' (read only: not pushing)'}`
      }
    }
    case 'local': {
      const exportDir = `${localDir}-next`
      return {
        backend: 'local',
        status: 'on',
        from: [`type=local,src=${localDir}`],
        // a fresh directory each build, swapped in by the post step, so old blobs do not pile up
        to: [`type=local,dest=${exportDir},mode=max,ignore-error=true`],
        localDir,
        localExportDir: exportDir,
        note: `local ${localDir}, saved to the Actions cache as ${localCacheKeyPrefix(scope)}*`
      }
    }
  }
}

export function localCacheKeyPrefix(scope: string): string {
  return `brokkr-buildx-${scope}-`
}

/**
 * Where the build result goes: BuildKit's own push (the fast path), an OCI layout that our
 * pusher uploads request by request (after BuildKit's push met a flaky registry), or nowhere.
 */
export type BuildOutput = { kind: 'push' } | { kind: 'layout'; dir: string } | { kind: 'none' }

export interface BuildArgvOptions {
  builder: string
  output: BuildOutput
  metadataFile: string
  labels: string[]
  cache: CachePlan
  /** drop cache-from entries whose source is missing (a local cache not restored yet) */
  includeCacheFrom: boolean
  /** what buildx attests by default when pushing (see defaultProvenance) */
  defaultProvenance: string
}

/**
 * buildx attests provenance (mode=min) by default when it pushes, but not when it exports an OCI
 * layout: the layout push names it explicitly, so both ways publish the same shape.
 */
export function defaultProvenance(env: NodeJS.ProcessEnv): string {
  const off = env.BUILDX_NO_DEFAULT_ATTESTATIONS
  return off && !/^(0|false)$/i.test(off) ? 'false' : 'mode=min'
}

/** The one `docker buildx build` this run executes. */
export function buildArgv(config: Config, platform: Platform, o: BuildArgvOptions): string[] {
  const argv = ['buildx', 'build', '--builder', o.builder, '--platform', formatPlatform(platform), '--file', config.file]
  if (config.target) argv.push('--target', config.target)
  argv.push('--tag', archRef(config.image, config.sha, platform))
  for (const arg of config.buildArgs) argv.push('--build-arg', arg)
  for (const label of o.labels) argv.push('--label', label)
  const provenance = config.provenance || (o.output.kind === 'layout' ? o.defaultProvenance : '')
  if (provenance) argv.push(`--provenance=${provenance}`)
  if (o.includeCacheFrom) for (const from of o.cache.from) argv.push('--cache-from', from)
  for (const to of o.cache.to) argv.push('--cache-to', to)
  argv.push('--metadata-file', o.metadataFile)
  if (o.output.kind === 'push') argv.push('--push')
  else if (o.output.kind === 'layout') argv.push('--output', `type=oci,dest=${o.output.dir},tar=false`)
  // without a push the result stays in the build cache: nothing is loaded or exported
  else argv.push('--output', 'type=cacheonly')
  argv.push(config.context)
  return argv
}

export function loginArgv(registry: string, username: string): string[] {
  return ['login', registry, '--username', username, '--password-stdin']
}

export function createBuilderArgv(config: Config): string[] | undefined {
  if (config.driver === 'docker') return undefined
  const argv = ['buildx', 'create', '--name', config.builder, '--driver', config.driver, '--bootstrap']
  if (config.driver === 'remote') argv.push(config.endpoint)
  return argv
}

export function qemuInstallArgv(qemuImage: string, platform: Platform): string[] {
  return ['run', '--privileged', '--rm', qemuImage, '--install', platform.architecture]
}
