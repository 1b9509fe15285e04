import { InputError } from './errors.js'
import { parseDuration } from './duration.js'
import type { GitHubContext } from './github-context.js'
import { archTag, formatPlatform, parsePlatform, type Platform } from './platform.js'
import { isValidTag } from './tags.js'

export type Mode = 'build' | 'manifest'
export type PushSetting = 'auto' | 'true' | 'false'
export type CacheBackend = 'gha' | 'registry' | 'local' | 'none'
export type Driver = 'docker-container' | 'docker' | 'remote'
export type QemuSetting = 'auto' | 'true' | 'false'

export interface Credentials {
  username: string
  password: string
}

/** Every input, validated and resolved once; nothing downstream reads inputs again. */
export interface Config {
  mode: Mode
  component: string
  /** build mode: the one platform to build */
  platform?: Platform
  /** manifest mode: every platform the index must hold */
  platforms: Platform[]
  /** registry host to log in to (the host of `image`) */
  registry: string
  /** image name without tag, e.g. ghcr.io/colliery-io/brokkr-agent */
  image: string
  context: string
  file: string
  buildArgs: string[]
  labels: string[]
  target: string
  provenance: string
  sha: string
  tags: string[]
  autoTags: boolean
  push: PushSetting
  cache: CacheBackend
  /** build mode: resolved cache scope */
  cacheScope: string
  /** build mode: how long cache export may run once the image is written; 0 = unbounded */
  cacheTimeoutMs: number
  driver: Driver
  endpoint: string
  builder: string
  keepBuilder: boolean
  qemu: QemuSetting
  qemuImage: string
  credentials: Credentials
  dockerHub: Credentials
  retries: number
  retryDelayMs: number
  waitTimeoutMs: number
  dryRun: boolean
}

/** Reads one input by its action.yml name; returns '' when unset. */
export type InputReader = (name: string) => string

export interface InputEnvironment {
  github: GitHubContext
  /** does this local path exist (relative to the workspace)? */
  exists: (path: string) => boolean
}

const COMPONENT = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/
const REGISTRY_HOST = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$/
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const BUILDER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/
const BUILD_ARG = /^[A-Za-z_][A-Za-z0-9_]*=/
const LABEL = /^[^\s=]+=/
const TARGET = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/
const SCOPE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/
const SHA = /^[0-9a-f]{7,64}$/
const REMOTE_ENDPOINT = /^(tcp|unix):\/\/\S+$/

function oneOf<T extends string>(read: InputReader, name: string, allowed: readonly T[]): T {
  const value = read(name)
  if (!(allowed as readonly string[]).includes(value)) {
    throw new InputError(name, `'${value}' is not one of ${allowed.join(', ')}`)
  }
  return value as T
}

function bool(read: InputReader, name: string): boolean {
  const value = read(name).toLowerCase()
  if (value === 'true') return true
  if (value === 'false' || value === '') return false
  throw new InputError(name, `'${read(name)}' is not true or false`)
}

/** Splits a newline list (build-args, labels): blank lines and surrounding spaces are dropped. */
export function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
}

/** Splits a newline-or-comma list (platforms, tags). */
export function items(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
}

function platformInput(name: string, text: string): Platform {
  const parsed = parsePlatform(text)
  if (typeof parsed === 'string') throw new InputError(name, parsed)
  return parsed
}

function duration(read: InputReader, name: string, minMs: number, maxMs: number): number {
  const text = read(name)
  const ms = parseDuration(text)
  if (ms === undefined) throw new InputError(name, `'${text}' is not a duration; write e.g. 500ms, 2s or 10m`)
  if (ms < minMs || ms > maxMs) throw new InputError(name, `'${text}' is out of range (${minMs} ms to ${maxMs / 1000} s)`)
  return ms
}

/** Checks an image name (no tag, no digest): registry host, then lower-case path components. */
export function imageNameProblem(image: string): string | undefined {
  if (/[@\s]/.test(image)) return `'${image}' must be a plain image name without digest or spaces`
  const parts = image.split('/')
  const last = parts[parts.length - 1]
  if (last.includes(':')) return `'${image}' must not carry a tag; the action tags <sha>-<arch> and <sha> itself`
  const path = parts.length > 1 && looksLikeHost(parts[0]) ? parts.slice(1) : parts
  if (path.length === 0 || !path.every((c) => PATH_COMPONENT.test(c))) {
    return `'${image}' is not a valid image name (lower-case letters, digits and . _ - between slashes)`
  }
  return undefined
}

function looksLikeHost(part: string): boolean {
  return part.includes('.') || part.includes(':') || part === 'localhost'
}

/** The registry an image lives in: its first path part when that is a host, else Docker Hub. */
export function registryOf(image: string): string {
  const first = image.split('/')[0]
  return image.includes('/') && looksLikeHost(first) ? first : 'docker.io'
}

export function parseConfig(read: InputReader, env: InputEnvironment): Config {
  const mode = oneOf(read, 'mode', ['build', 'manifest'] as const)

  const component = read('component')
  if (component === '') throw new InputError('component', 'is required; set it to the component to build, e.g. broker or agent')
  if (!COMPONENT.test(component)) {
    throw new InputError('component', `'${component}' must be lower-case letters and digits, optionally joined by . _ or -`)
  }

  let platform: Platform | undefined
  if (mode === 'build') {
    const text = read('platform')
    if (text === '') throw new InputError('platform', 'is required in build mode; set one platform such as linux/amd64 or linux/arm64')
    if (text.includes(',') || text.includes('\n')) {
      throw new InputError('platform', `'${text}' names several platforms; build mode builds one (run a matrix, then mode: manifest)`)
    }
    platform = platformInput('platform', text)
  }

  const platformTexts = items(read('platforms'))
  if (mode === 'manifest' && platformTexts.length === 0) {
    throw new InputError('platforms', 'is empty; list every platform the index must hold, e.g. linux/amd64,linux/arm64')
  }
  const platforms = platformTexts.map((t) => platformInput('platforms', t))
  const seen = new Set<string>()
  for (const p of platforms) {
    if (seen.has(archTag(p))) throw new InputError('platforms', `${formatPlatform(p)} is listed twice`)
    seen.add(archTag(p))
  }

  const registryInput = read('registry').toLowerCase()
  if (!REGISTRY_HOST.test(registryInput)) {
    throw new InputError('registry', `'${read('registry')}' is not a registry host such as ghcr.io or 127.0.0.1:5000`)
  }
  const prefix = read('image-prefix')
  let image = read('image')
  if (image === '') {
    const owner = env.github.owner.toLowerCase()
    if (owner === '') throw new InputError('image', 'is empty and the repository owner is unknown; set image to the full image name')
    image = `${registryInput}/${owner}/${prefix}${component}`
    const problem = imageNameProblem(image)
    if (problem) throw new InputError('image-prefix', `${problem}; fix image-prefix or set image`)
  } else {
    const problem = imageNameProblem(image)
    if (problem) throw new InputError('image', problem)
  }

  const context = read('context') || '.'
  const remoteContext = /^[a-z][a-z0-9+.-]*:\/\//i.test(context) || context.startsWith('git@')
  if (mode === 'build' && !remoteContext && !env.exists(context)) {
    throw new InputError('context', `'${context}' does not exist; check out the repository first or fix the path`)
  }
  const file = read('file') || `docker/Dockerfile.${component}`
  if (mode === 'build' && !remoteContext && !env.exists(file)) {
    throw new InputError('file', `'${file}' does not exist; add it or point file at the component's Dockerfile`)
  }

  const buildArgs = lines(read('build-args'))
  for (const arg of buildArgs) {
    if (!BUILD_ARG.test(arg)) throw new InputError('build-args', `'${arg}' is not NAME=value (one per line)`)
  }
  const labels = lines(read('labels'))
  for (const label of labels) {
    if (!LABEL.test(label)) throw new InputError('labels', `'${label}' is not name=value (one per line)`)
  }
  const target = read('target')
  if (target !== '' && !TARGET.test(target)) throw new InputError('target', `'${target}' is not a stage name`)
  const provenance = read('provenance')
  if (provenance !== '' && !/^[A-Za-z0-9=,._:/-]+$/.test(provenance)) {
    throw new InputError('provenance', `'${provenance}' is not a buildx provenance value such as false, mode=min or mode=max`)
  }

  const sha = read('sha').toLowerCase()
  if (sha === '') throw new InputError('sha', 'is empty; run inside a GitHub workflow or pass the commit sha')
  if (!SHA.test(sha)) throw new InputError('sha', `'${read('sha')}' is not a commit sha (7 to 64 hex digits)`)

  const tags = [...new Set(items(read('tags')))]
  for (const tag of tags) {
    if (!isValidTag(tag)) throw new InputError('tags', `'${tag}' is not a valid tag (letters, digits, _ . -; at most 128; not starting with . or -)`)
  }
  const autoTags = bool(read, 'auto-tags')
  const push = oneOf(read, 'push', ['auto', 'true', 'false'] as const)
  const cache = oneOf(read, 'cache', ['gha', 'registry', 'local', 'none'] as const)
  const scopeInput = read('cache-scope')
  if (scopeInput !== '' && !SCOPE.test(scopeInput)) {
    throw new InputError('cache-scope', `'${scopeInput}' may hold only letters, digits, _ . and -`)
  }
  const cacheScope = scopeInput || (platform ? `${component}-${archTag(platform)}` : '')

  const driver = oneOf(read, 'driver', ['docker-container', 'docker', 'remote'] as const)
  const endpoint = read('endpoint')
  if (driver === 'remote' && endpoint === '') {
    throw new InputError('endpoint', 'is required with driver: remote; set the BuildKit address, e.g. tcp://buildkitd:1234')
  }
  if (endpoint !== '' && !REMOTE_ENDPOINT.test(endpoint)) {
    throw new InputError('endpoint', `'${endpoint}' is not a tcp:// or unix:// address`)
  }
  const builder = read('builder')
  if (!BUILDER_NAME.test(builder)) throw new InputError('builder', `'${builder}' is not a builder name (letters, digits, _ . -)`)
  const keepBuilder = bool(read, 'keep-builder')
  const qemu = oneOf(read, 'qemu', ['auto', 'true', 'false'] as const)
  const qemuImage = read('qemu-image')
  // never a leading dash: the value is an argument of `docker run`
  if (!/^[A-Za-z0-9][^\s]*$/.test(qemuImage)) throw new InputError('qemu-image', `'${qemuImage}' is not an image reference`)

  const retriesText = read('retries')
  if (!/^\d+$/.test(retriesText) || Number(retriesText) > 100) {
    throw new InputError('retries', `'${retriesText}' is not a whole number from 0 to 100`)
  }
  const retryDelayMs = duration(read, 'retry-delay', 1, 600_000)
  const waitTimeoutMs = duration(read, 'wait-timeout', 0, 6 * 3_600_000)
  const cacheTimeoutMs = duration(read, 'cache-timeout', 0, 6 * 3_600_000)

  const username = read('username')
  if (read('password') !== '' && username === '') {
    throw new InputError('username', 'is empty but password is set; set username to the registry user (github.actor for ghcr.io)')
  }

  return {
    mode,
    component,
    platform,
    platforms,
    registry: registryOf(image),
    image,
    context,
    file,
    buildArgs,
    labels,
    target,
    provenance,
    sha,
    tags,
    autoTags,
    push,
    cache,
    cacheScope,
    cacheTimeoutMs,
    driver,
    endpoint,
    builder,
    keepBuilder,
    qemu,
    qemuImage,
    credentials: { username, password: read('password') },
    dockerHub: { username: read('dockerhub-username'), password: read('dockerhub-token') },
    retries: Number(retriesText),
    retryDelayMs,
    waitTimeoutMs,
    dryRun: bool(read, 'dry-run')
  }
}
