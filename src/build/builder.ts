import * as core from '@actions/core'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BuildConfig } from '../config/types.js'
import { ActionError } from '../model/errors.js'
import { dockerConfigDir, lastErrorLines, type Docker } from '../runtime/docker.js'
import { group } from '../runtime/log.js'
import { saveState, type PostState } from '../runtime/state.js'

/** The docker driver's builder is the docker context itself; find its name without running docker. */
export function currentContext(env: NodeJS.ProcessEnv): string {
  if (env.DOCKER_CONTEXT) return env.DOCKER_CONTEXT
  if (env.DOCKER_HOST) return 'default'
  const file = join(dockerConfigDir(env), 'config.json')
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

export type BuilderStep =
  | { kind: 'docker-context'; name: string }
  | { kind: 'reuse'; name: string }
  | { kind: 'create'; name: string }
  | { kind: 'conflict'; name: string; message: string }

export function decideBuilder(config: BuildConfig, env: NodeJS.ProcessEnv, existing: ExistingBuilder | undefined): BuilderStep {
  if (config.driver === 'docker') return { kind: 'docker-context', name: currentContext(env) }
  if (!existing) return { kind: 'create', name: config.builder }
  if (existing.driver !== config.driver) {
    return {
      kind: 'conflict',
      name: config.builder,
      message: `builder: '${config.builder}' already exists with driver ${existing.driver || 'unknown'}, not ${config.driver}; pick another builder name or remove it`
    }
  }
  return { kind: 'reuse', name: config.builder }
}

/** `buildkitdConfigFile`: where the inline buildkitd.toml was written, when there is one. */
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
 * Reuses the docker context's builder, or an existing builder of ours, or creates (and remembers) one.
 * A builder this run tried to create is remembered before `buildx create` runs and removed at once
 * when creation fails: a half-made builder would be "reused" by the next run and fail it again.
 */
export async function setUpBuilder(config: BuildConfig, docker: Docker, env: NodeJS.ProcessEnv, state: PostState): Promise<string> {
  return group('Builder', async () => {
    const inspected = config.driver === 'docker' ? undefined : await docker.probe(['buildx', 'inspect', config.builder])
    const builder = decideBuilder(config, env, inspected && inspected.code === 0 ? parseInspect(inspected.stdout) : undefined)
    if (builder.kind === 'conflict') throw new ActionError(builder.message)
    if (builder.kind === 'create') await create(config, docker, builder.name, state)
    else if (builder.kind === 'reuse' && (config.driverOpts.length > 0 || config.buildkitdConfig)) {
      core.warning(
        `builder ${builder.name} already exists, so driver-opts and buildkitd-config-inline are not applied (they take effect when the action creates the builder); remove it with docker buildx rm ${builder.name} or pick another builder name`
      )
    }
    if (builder.kind === 'reuse' && !config.dryRun) {
      // a builder that cannot start fails here in one line, not after six build tries
      const started = await docker.run(['buildx', 'inspect', '--bootstrap', builder.name])
      if (started.code !== 0) {
        throw new ActionError(
          `builder: '${builder.name}' exists but does not start (${lastErrorLines(started.stderr || started.stdout)}); remove it with docker buildx rm ${builder.name} or pick another builder name`
        )
      }
    }
    core.info(`builder ${builder.name} (${builder.kind === 'create' ? 'created' : builder.kind === 'reuse' ? 'reused' : 'docker driver'})`)
    return builder.name
  })
}

async function create(config: BuildConfig, docker: Docker, name: string, state: PostState): Promise<void> {
  if (!config.dryRun) {
    state.builderCreated = name
    saveState(state)
  }
  // buildx copies the file into the builder's state when creating it: the copy here lives only that long
  const configDir = config.buildkitdConfig ? mkdtempSync(join(tmpdir(), 'brokkr-buildkitd-')) : undefined
  const configFile = configDir && join(configDir, 'buildkitd.toml')
  if (configFile) writeFileSync(configFile, config.buildkitdConfig, { mode: 0o600 })
  try {
    await docker.mustRun(`creating builder ${name}`, createBuilderArgv(config, configFile)!)
  } catch (error) {
    if (!config.dryRun) {
      await docker.run(['buildx', 'rm', name])
      state.builderCreated = undefined
      saveState(state)
    }
    throw error
  } finally {
    if (configDir) rmSync(configDir, { recursive: true, force: true })
  }
}
