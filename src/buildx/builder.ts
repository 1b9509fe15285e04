import * as core from '@actions/core'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { RunnerEnvironment } from '../config/environment.js'
import type { BuildConfig } from '../config/types.js'
import { ActionError } from '../model/errors.js'
import { lastErrorLines, type Docker } from '../runtime/docker.js'
import { group } from '../runtime/log.js'
import { saveState, type PostState } from '../runtime/state.js'

/** The docker driver's builder is the docker context itself; find its name without running docker. */
export function currentContext(env: Pick<RunnerEnvironment, 'dockerContext' | 'dockerHost' | 'dockerConfigDir'>): string {
  if (env.dockerContext) return env.dockerContext
  if (env.dockerHost) return 'default'
  const file = join(env.dockerConfigDir, 'config.json')
  if (!existsSync(file)) return 'default'
  try {
    return (JSON.parse(readFileSync(file, 'utf8')).currentContext as string) || 'default'
  } catch {
    return 'default'
  }
}

/** What `docker buildx inspect <name>` said, reduced to what we decide on. */
export interface ExistingBuilder {
  driver: string
}

export function parseInspect(stdout: string): ExistingBuilder {
  const m = /^Driver:\s*(\S+)/m.exec(stdout)
  return { driver: m ? m[1] : '' }
}

/**
 * The builder a run uses. `create` carries its whole `buildx create` argv and, when there is an
 * inline buildkitd.toml, the file the argv names and the text to write there first.
 */
export type BuilderStep = { kind: 'docker-context'; name: string } | { kind: 'reuse'; name: string; warning?: string } | CreateBuilderStep

export interface CreateBuilderStep {
  kind: 'create'
  name: string
  argv: string[]
  buildkitdConfig?: { file: string; text: string }
}

/**
 * Decides from what `buildx inspect` found. A builder of another driver under our name is refused
 * here, before any docker command that changes something runs.
 */
export function decideBuilder(config: BuildConfig, dockerContext: string, existing: ExistingBuilder | undefined, workDir: string): BuilderStep {
  if (config.driver === 'docker') return { kind: 'docker-context', name: dockerContext }
  if (!existing) {
    // buildx copies the file into the builder's state when creating it: the copy lives only that long
    const buildkitdConfig = config.buildkitdConfig ? { file: join(workDir, 'buildkitd.toml'), text: config.buildkitdConfig } : undefined
    return { kind: 'create', name: config.builder, argv: createBuilderArgv(config, buildkitdConfig?.file)!, ...(buildkitdConfig ? { buildkitdConfig } : {}) }
  }
  if (existing.driver !== config.driver) {
    throw new ActionError(
      `builder: '${config.builder}' already exists with driver ${existing.driver || 'unknown'}, not ${config.driver}; pick another builder name or remove it`
    )
  }
  const unapplied = config.driverOpts.length > 0 || config.buildkitdConfig !== ''
  return {
    kind: 'reuse',
    name: config.builder,
    ...(unapplied
      ? {
          warning: `builder ${config.builder} already exists, so driver-opts and buildkitd-config-inline are not applied (they take effect when the action creates the builder); remove it with docker buildx rm ${config.builder} or pick another builder name`
        }
      : {})
  }
}

/**
 * The builder for a build that must not read the cache. A stalled cache import holds BuildKit's
 * scheduler (its lazy cache manager resolves the import in a context no client cancels; seen in a
 * goroutine dump of dockerd), so every later build on that BuildKit waits until its downloads give
 * up: the docker driver's engine and a docker-container builder alike. A fresh docker-container
 * builder is not held. A remote builder has no fresh twin: its cold build runs where it is.
 */
export function decideColdBuilder(config: BuildConfig, workDir: string): CreateBuilderStep | undefined {
  if (config.driver === 'remote') return undefined
  const name = `brokkr-cold-${basename(workDir).replace(/^brokkr-build-/, '')}`
  const buildkitdConfig = config.buildkitdConfig ? { file: join(workDir, 'buildkitd-cold.toml'), text: config.buildkitdConfig } : undefined
  // on the docker driver the engine's network, so registries on localhost answer as they did
  const driverOpts = config.driver === 'docker-container' ? config.driverOpts : ['network=host']
  const cold = { ...config, builder: name, driver: 'docker-container' as const, driverOpts }
  return { kind: 'create', name, argv: createBuilderArgv(cold, buildkitdConfig?.file)!, ...(buildkitdConfig ? { buildkitdConfig } : {}) }
}

/** `buildkitdConfigFile`: where the inline buildkitd.toml is written, when there is one. */
export function createBuilderArgv(config: BuildConfig, buildkitdConfigFile?: string): string[] | undefined {
  if (config.driver === 'docker') return undefined
  const argv = ['buildx', 'create', '--name', config.builder, '--driver', config.driver]
  for (const opt of config.driverOpts) argv.push('--driver-opt', opt)
  if (buildkitdConfigFile) argv.push('--buildkitd-config', buildkitdConfigFile)
  argv.push('--bootstrap')
  if (config.driver === 'remote') argv.push(config.endpoint)
  return argv
}

/** Post step: remove only what this run created, and only when asked not to keep it. */
export function shouldRemoveBuilder(created: string | undefined, keep: boolean | undefined): boolean {
  return Boolean(created) && !keep
}

/**
 * Carries out the builder step. A builder this run creates is remembered before `buildx create`
 * runs and removed at once when creation fails: a half-made builder would be "reused" by the next
 * run and fail it again. A reused one must start, or the run ends here in one line.
 */
export async function setUpBuilder(step: BuilderStep, docker: Docker, state: PostState): Promise<void> {
  await group('Builder', async () => {
    if (step.kind === 'create') await create(step, docker, state)
    if (step.kind === 'reuse') {
      if (step.warning) core.warning(step.warning)
      const started = await docker.run(['buildx', 'inspect', '--bootstrap', step.name])
      if (started.code !== 0) {
        throw new ActionError(
          `builder: '${step.name}' exists but does not start (${lastErrorLines(started.stderr || started.stdout)}); remove it with docker buildx rm ${step.name} or pick another builder name`
        )
      }
    }
    core.info(`builder ${step.name} (${step.kind === 'create' ? 'created' : step.kind === 'reuse' ? 'reused' : 'docker driver'})`)
  })
}

/** Makes the cold builder (decideColdBuilder), remembered for the post step, which removes it whatever keep-builder says. */
export async function setUpColdBuilder(step: CreateBuilderStep, docker: Docker, state: PostState): Promise<void> {
  // inside the build's log group: groups do not nest
  core.info(`Cold builder ${step.name}: a fresh docker-container builder for the build without the cache`)
  await create(step, docker, state, 'coldBuilder')
}

async function create(step: CreateBuilderStep, docker: Docker, state: PostState, key: 'builderCreated' | 'coldBuilder' = 'builderCreated'): Promise<void> {
  state[key] = step.name
  saveState(state)
  if (step.buildkitdConfig) writeFileSync(step.buildkitdConfig.file, step.buildkitdConfig.text, { mode: 0o600 })
  try {
    await docker.mustRun(`creating builder ${step.name}`, step.argv)
  } catch (error) {
    await docker.run(['buildx', 'rm', step.name])
    state[key] = undefined
    saveState(state)
    throw error
  } finally {
    if (step.buildkitdConfig) rmSync(step.buildkitdConfig.file, { force: true })
  }
}

/**
 * From `docker info --format '{{json .DriverStatus}}'`: whether the engine keeps images in the
 * containerd image store (it names its snapshotter there). Undefined when the answer is not JSON.
 */
export function containerdImageStore(driverStatus: string): boolean | undefined {
  try {
    const status = JSON.parse(driverStatus)
    return Array.isArray(status) && status.some((pair) => Array.isArray(pair) && pair.includes('io.containerd.snapshotter.v1'))
  } catch {
    return undefined
  }
}

/**
 * The probe for attestations on the docker driver: only the containerd image store keeps them.
 * Asked only when an SBOM is wanted there; undefined when docker info does not answer (buildx then says).
 */
export async function probeContainerdStore(config: BuildConfig, docker: Docker): Promise<boolean | undefined> {
  if (config.driver !== 'docker' || config.sbom === '') return undefined
  const info = await docker.probe(['info', '--format', '{{json .DriverStatus}}'])
  return info.code === 0 ? containerdImageStore(info.stdout.trim()) : undefined
}

/** A one-line refusal, before anything runs, of an SBOM the builder cannot attach. */
export function sbomProblem(config: BuildConfig, containerdStore: boolean | undefined): string | undefined {
  if (config.sbom === '' || config.driver !== 'docker' || containerdStore !== false) return undefined
  return "the docker driver attaches attestations only with the engine's containerd image store; turn that on (features.containerd-snapshotter in daemon.json), use driver: docker-container, or set sbom: false"
}

/** The probe the plan needs: what already answers to the builder name (nothing for the docker driver). */
export async function inspectBuilder(config: BuildConfig, docker: Docker): Promise<ExistingBuilder | undefined> {
  if (config.driver === 'docker') return undefined
  const inspected = await docker.probe(['buildx', 'inspect', config.builder])
  return inspected.code === 0 ? parseInspect(inspected.stdout) : undefined
}
