import { InputError } from '../model/errors.js'
import { parseBuilder, parseCache, parseSources } from './build-inputs.js'
import { parseSecrets, parseSsh } from './secrets.js'
import { parseBuildPlatform, parseComponent, parseImage, parsePlatformList, parseSha, parseTags } from './identity.js'
import { bool, duration, lines, oneOf, type InputEnvironment, type InputReader } from './read.js'
import type { Config } from './types.js'

export type { InputEnvironment, InputReader } from './read.js'
export type { BuildConfig, Config, Credentials, ManifestConfig } from './types.js'

/**
 * Reads and checks every input, in a fixed order (the first bad input is the one reported), and
 * returns the config of the mode. Inputs of the other mode are still checked, as they always were.
 */
export function parseConfig(read: InputReader, env: InputEnvironment): Config {
  const mode = oneOf(read, 'mode', ['build', 'manifest'] as const)
  const component = parseComponent(read)
  // the one platform exists only in build mode: the union below carries it without a `!`
  const modal = mode === 'build' ? { mode, platform: parseBuildPlatform(read) } : { mode }
  const platforms = parsePlatformList(read, mode)
  const { image, registry } = parseImage(read, component, env)
  const sources = parseSources(read, mode, component, env)
  const secrets = parseSecrets(read, env)
  const ssh = parseSsh(read, env)
  const sha = parseSha(read)
  const { tags, autoTags } = parseTags(read)
  const annotations = parseAnnotations(read)
  const push = oneOf(read, 'push', ['auto', 'true', 'false'] as const)
  const publishCheck = bool(read, 'publish-check')
  const cache = parseCache(read, component, modal.mode === 'build' ? modal.platform : undefined)
  const builder = parseBuilder(read)
  const timing = parseTiming(read)
  const credentials = parseCredentials(read)
  const base = {
    component,
    registry,
    image,
    sha,
    push,
    publishCheck,
    credentials: credentials.registry,
    retries: timing.retries,
    retryDelayMs: timing.retryDelayMs
  }
  const dryRun = bool(read, 'dry-run')
  if (modal.mode === 'manifest')
    return { mode: modal.mode, ...base, platforms, annotations, tags, autoTags, waitTimeoutMs: timing.waitTimeoutMs, githubToken: read('github-token'), dryRun }
  return {
    mode: modal.mode,
    ...base,
    platform: modal.platform,
    ...sources,
    secrets,
    ssh,
    ...cache,
    cacheTimeoutMs: timing.cacheTimeoutMs,
    ...builder,
    dockerHub: credentials.dockerHub,
    dryRun
  }
}

const ANNOTATION = /^[A-Za-z0-9][A-Za-z0-9._/-]*=/

function parseAnnotations(read: InputReader): string[] {
  const annotations = lines(read('annotations'))
  for (const annotation of annotations) {
    if (!ANNOTATION.test(annotation)) {
      throw new InputError('annotations', `'${annotation}' is not key=value with a key such as org.opencontainers.image.description (one per line)`)
    }
  }
  return annotations
}

function parseTiming(read: InputReader) {
  const retriesText = read('retries')
  if (!/^\d+$/.test(retriesText) || Number(retriesText) > 100) {
    throw new InputError('retries', `'${retriesText}' is not a whole number from 0 to 100`)
  }
  const retryDelayMs = duration(read, 'retry-delay', 1, 600_000)
  const waitTimeoutMs = duration(read, 'wait-timeout', 0, 6 * 3_600_000)
  const cacheTimeoutMs = duration(read, 'cache-timeout', 0, 6 * 3_600_000)
  return { retries: Number(retriesText), retryDelayMs, waitTimeoutMs, cacheTimeoutMs }
}

function parseCredentials(read: InputReader) {
  const username = read('username')
  if (read('password') !== '' && username === '') {
    throw new InputError('username', 'is empty but password is set; set username to the registry user (github.actor for ghcr.io)')
  }
  return {
    registry: { username, password: read('password') },
    dockerHub: { username: read('dockerhub-username'), password: read('dockerhub-token') }
  }
}
