import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Config } from './inputs.js'

export function dockerConfigDir(env: NodeJS.ProcessEnv): string {
  return env.DOCKER_CONFIG || join(homedir(), '.docker')
}

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

export function decideBuilder(config: Config, env: NodeJS.ProcessEnv, existing: ExistingBuilder | undefined): BuilderStep {
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

/** Post step: remove only what this run created, and only when asked not to keep it. */
export function shouldRemoveBuilder(created: string | undefined, keep: boolean | undefined): boolean {
  return Boolean(created) && !keep
}
