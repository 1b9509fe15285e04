import type { BuildConfig } from '../config/types.js'
import { archRef } from '../model/image.js'
import { formatPlatform } from '../model/platform.js'
import { imageMetadata } from '../model/oci-metadata.js'
import type { RunnerEnvironment } from '../config/environment.js'
import type { GitHubContext } from '../model/github.js'
import type { CachePlan } from './cache.js'

export function ociLabels(config: BuildConfig, github: GitHubContext, created: string): string[] {
  // the user's labels come last so they win over ours
  return [...Object.entries(imageMetadata(github, config.image, config.sha, created)).map(([k, v]) => `${k}=${v}`), ...config.labels]
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
  /** `--secret` / `--ssh` arguments: ids, variable names and paths, never values */
  secretArgs: string[]
  /** the commit's time for BuildKit (see model/source-date.ts), and whether the image output rewrites layer timestamps to it */
  reproducible?: Reproducible
}

export interface Reproducible {
  /** the commit's time for the image output; undefined when the user's SOURCE_DATE_EPOCH build-arg carries it */
  sourceDateEpoch?: number
  rewriteTimestamps: boolean
}

/**
 * The image output dates the config and history by the commit and clamps file times in the layers
 * to it (`source-date-epoch`, `rewrite-timestamp`, BuildKit 0.13+), so files a RUN step writes do
 * not carry the build's time. The time goes to the exporter, not to the frontend as a
 * SOURCE_DATE_EPOCH build-arg: the Dockerfile frontend puts that into WORKDIR's mkdir, so a new
 * commit time would miss the cache from the first WORKDIR on. The docker driver's image store
 * unpacks every image it builds, and BuildKit refuses rewrite-timestamp with unpack: there both
 * stay off.
 */
export function rewritesTimestamps(driver: BuildConfig['driver']): boolean {
  return driver !== 'docker'
}

/**
 * buildx attests provenance (mode=min) by default when it pushes, but not when it exports an OCI
 * layout: the layout push names it explicitly, so both ways publish the same shape.
 */
export function defaultProvenance(env: Pick<RunnerEnvironment, 'noDefaultAttestations'>): string {
  return env.noDefaultAttestations ? 'false' : 'mode=min'
}

/** `sbom: true` is buildx's shorthand; attributes (a generator image, scan options) go through `--attest`. */
export function sbomArgs(sbom: string): string[] {
  if (sbom === '') return []
  return sbom === 'true' ? ['--sbom=true'] : ['--attest', `type=sbom,${sbom}`]
}

/** The one `docker buildx build` this run executes. */
export function buildArgv(config: BuildConfig, o: BuildArgvOptions): string[] {
  const argv = ['buildx', 'build', '--builder', o.builder, '--platform', formatPlatform(config.platform), '--file', config.file]
  if (config.target) argv.push('--target', config.target)
  argv.push('--tag', archRef(config.image, config.sha, config.platform))
  for (const arg of config.buildArgs) argv.push('--build-arg', arg)
  for (const label of o.labels) argv.push('--label', label)
  for (const context of config.buildContexts) argv.push('--build-context', context)
  argv.push(...o.secretArgs)
  if (config.noCache) argv.push('--no-cache')
  if (config.pull) argv.push('--pull')
  const provenance = config.provenance || (o.output.kind === 'layout' ? o.defaultProvenance : '')
  if (provenance) argv.push(`--provenance=${provenance}`)
  argv.push(...sbomArgs(config.sbom))
  if (o.includeCacheFrom) for (const from of o.cache.from) argv.push('--cache-from', from)
  for (const to of o.cache.to) argv.push('--cache-to', to)
  argv.push('--metadata-file', o.metadataFile)
  const epoch = o.reproducible?.sourceDateEpoch
  const rewrite = o.reproducible?.rewriteTimestamps ? `,rewrite-timestamp=true${epoch !== undefined ? `,source-date-epoch=${epoch}` : ''}` : ''
  if (o.output.kind === 'push') argv.push(...(rewrite ? ['--output', `type=image,push=true${rewrite}`] : ['--push']))
  else if (o.output.kind === 'layout') argv.push('--output', `type=oci,dest=${o.output.dir},tar=false${rewrite}`)
  // without a push the result stays in the build cache: nothing is loaded or exported
  else argv.push('--output', 'type=cacheonly')
  argv.push(config.context)
  return argv
}

/** The argv without its `--cache-from` pairs: a local cache the restore did not bring back cannot be read. */
export function withoutCacheFrom(argv: string[]): string[] {
  return argv.filter((arg, i) => arg !== '--cache-from' && argv[i - 1] !== '--cache-from')
}
