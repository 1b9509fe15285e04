import type { PushSetting } from '../model/push.js'

export type { PushSetting }
import type { Platform } from '../model/platform.js'
import type { BuildSecret, SshSource } from './secrets.js'

export type { BuildSecret, SshSource }

export type Mode = 'build' | 'manifest'
export type CacheBackend = 'gha' | 'registry' | 'local' | 'none'
export type Driver = 'docker-container' | 'docker' | 'remote'
export type QemuSetting = 'auto' | 'true' | 'false'
export type CacheMode = 'max' | 'min'
/** auto: write on pushes to branches and tags and other non-pull-request events, read only on pull requests */
export type CacheWrite = 'auto' | 'true' | 'false'

export interface Credentials {
  username: string
  password: string
}

/** What both modes need: where the image lives, which commit, whether to push, how to retry. */
export interface BaseConfig {
  component: string
  /** registry host to log in to (the host of `image`) */
  registry: string
  /** image name without tag, e.g. ghcr.io/colliery-io/brokkr-agent */
  image: string
  sha: string
  push: PushSetting
  /** prove before any work that the credentials may push (see registry/publish-check.ts) */
  publishCheck: boolean
  credentials: Credentials
  retries: number
  retryDelayMs: number
  dryRun: boolean
}

/** Build mode: one platform, its sources, its cache and the builder that runs it. */
export interface BuildConfig extends BaseConfig {
  mode: 'build'
  platform: Platform
  context: string
  file: string
  buildArgs: string[]
  labels: string[]
  target: string
  provenance: string
  /** '' (none), 'true' (buildx's default scanner) or `key=value,...` for `--attest type=sbom,...` */
  sbom: string
  /** `name=value` for `--build-context` */
  buildContexts: string[]
  secrets: BuildSecret[]
  ssh: SshSource[]
  noCache: boolean
  pull: boolean
  cache: CacheBackend
  cacheScope: string
  cacheMode: CacheMode
  cacheWrite: CacheWrite
  /** how long cache export may run once the image is written; 0 = unbounded */
  cacheTimeoutMs: number
  driver: Driver
  endpoint: string
  builder: string
  keepBuilder: boolean
  /** `key=value` for `buildx create --driver-opt` */
  driverOpts: string[]
  /** buildkitd.toml text for a builder this run creates */
  buildkitdConfig: string
  qemu: QemuSetting
  qemuImage: string
  /** Docker Hub login for its pull limits */
  dockerHub: Credentials
}

/** Manifest mode: every platform the index must hold, its tags and how long to wait for the arch images. */
export interface ManifestConfig extends BaseConfig {
  mode: 'manifest'
  platforms: Platform[]
  /** `key=value` annotations for the index, over the org.opencontainers.image.* ones */
  annotations: string[]
  tags: string[]
  autoTags: boolean
  waitTimeoutMs: number
  /** asks GitHub which commit is newer before a branch tag moves; '' = commit times decide */
  githubToken: string
}

/** Every input, validated and resolved once; nothing downstream reads inputs again. */
export type Config = BuildConfig | ManifestConfig
