import { InputError } from '../model/errors.js'
import { archTag, type Platform } from '../model/platform.js'
import type { Mode } from './types.js'
import { bool, lines, oneOf, type InputEnvironment, type InputReader } from './read.js'

// What build mode reads beyond the image: sources, cache, builder and emulation.

const BUILDER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/
const BUILD_ARG = /^[A-Za-z_][A-Za-z0-9_]*=/
const LABEL = /^[^\s=]+=/
const TARGET = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/
const SCOPE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/
const REMOTE_ENDPOINT = /^(tcp|unix):\/\/\S+$/
const CONTEXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$/
const DRIVER_OPT = /^[A-Za-z][A-Za-z0-9_.-]*=\S/

/** Context and Dockerfile must exist locally in build mode; remote contexts are buildx's to fetch. */
export function parseSources(read: InputReader, mode: Mode, component: string, env: InputEnvironment) {
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
    const epoch = /^SOURCE_DATE_EPOCH=(.*)$/.exec(arg)?.[1]
    if (epoch !== undefined && !/^\d{1,12}$/.test(epoch)) {
      throw new InputError('build-args', `SOURCE_DATE_EPOCH='${epoch}' is not a whole number of seconds since 1970; set it to one or leave it out`)
    }
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
  const sbom = parseSbom(read('sbom'))
  const buildContexts = lines(read('build-contexts'))
  for (const entry of buildContexts) {
    const eq = entry.indexOf('=')
    if (eq < 1 || !CONTEXT_NAME.test(entry.slice(0, eq)) || entry.slice(eq + 1).trim() === '') {
      throw new InputError('build-contexts', `'${entry}' is not name=source (a directory, docker-image://ref, a URL or target:stage; one per line)`)
    }
  }
  return { context, file, buildArgs, labels, target, provenance, sbom, buildContexts, noCache: bool(read, 'no-cache'), pull: bool(read, 'pull') }
}

/** `key=value` attributes of buildx's `--attest type=sbom,...`, such as generator=<image> */
const SBOM_ATTRS = /^[a-z][a-z0-9_-]*=[^\s,=]+(,[a-z][a-z0-9_-]*=[^\s,=]+)*$/i

/** '' (no SBOM), 'true' (buildx's default scanner) or the attributes of `--attest type=sbom,...` */
function parseSbom(value: string): string {
  const lower = value.toLowerCase()
  if (lower === '' || lower === 'false') return ''
  if (lower === 'true') return 'true'
  if (!SBOM_ATTRS.test(value) || /(^|,)type=/i.test(value)) {
    throw new InputError('sbom', `'${value}' is not false, true or buildx's SBOM attributes such as generator=<image> (key=value, comma-separated)`)
  }
  return value
}

export function parseCache(read: InputReader, component: string, platform: Platform | undefined) {
  const cache = oneOf(read, 'cache', ['gha', 'registry', 'local', 'none'] as const)
  const scopeInput = read('cache-scope')
  if (scopeInput !== '' && !SCOPE.test(scopeInput)) {
    throw new InputError('cache-scope', `'${scopeInput}' may hold only letters, digits, _ . and -`)
  }
  const cacheScope = scopeInput || (platform ? `${component}-${archTag(platform)}` : '')
  const cacheMode = oneOf(read, 'cache-mode', ['max', 'min'] as const)
  const cacheWrite = oneOf(read, 'cache-write', ['auto', 'true', 'false'] as const)
  return { cache, cacheScope, cacheMode, cacheWrite }
}

export function parseBuilder(read: InputReader) {
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
  const driverOpts = lines(read('driver-opts'))
  for (const opt of driverOpts) {
    if (!DRIVER_OPT.test(opt)) throw new InputError('driver-opts', `'${opt}' is not key=value (e.g. image=moby/buildkit:v0.25.2; one per line)`)
  }
  if (driverOpts.length > 0 && driver === 'docker') {
    throw new InputError('driver-opts', 'needs driver docker-container or remote; the docker driver has no options')
  }
  const buildkitdConfig = read('buildkitd-config-inline')
  if (buildkitdConfig.trim() !== '' && driver !== 'docker-container') {
    throw new InputError(
      'buildkitd-config-inline',
      `applies only to a builder the action starts (driver docker-container); with driver ${driver} configure the BuildKit daemon itself`
    )
  }
  return { driver, endpoint, builder, keepBuilder, qemu, qemuImage, driverOpts, buildkitdConfig: buildkitdConfig.trim() === '' ? '' : buildkitdConfig }
}
