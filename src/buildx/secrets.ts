import type { RunnerEnvironment } from '../config/environment.js'
import type { BuildSecret, SshSource } from '../config/types.js'
import { InputError } from '../model/errors.js'

/**
 * How the build's secrets and ssh reach buildx. Only ids, variable names and paths are in argv:
 * a value given inline travels in an environment variable that only the build command gets.
 */
export interface SecretPlan {
  /** `--secret` and `--ssh` arguments */
  args: string[]
  /** variables for the build command alone (never for other docker commands) */
  env: Record<string, string>
  /** every value to mask before anything runs */
  values: string[]
  /** what is handed to the build, for the plan and the summary: ids and sources, never values */
  described: string[]
  /** secrets and ssh sources left out, each with why */
  skipped: string[]
}

/** Name of the variable that carries the n-th inline secret to buildx. */
export function secretVariable(n: number): string {
  return `BROKKR_BUILD_SECRET_${n}`
}

function emptyReason(id: string, fromFork: boolean, source: string): string {
  return fromFork
    ? `secret ${id} is empty: runs from forks do not get repository secrets, so the build runs without it (a step that requires it fails)`
    : `secret ${id} is empty (${source}): the build runs without it; set the secret, or a step that requires it fails`
}

export function planSecrets(secrets: BuildSecret[], ssh: SshSource[], env: Pick<RunnerEnvironment, 'sshAgent' | 'variable'>, fromFork: boolean): SecretPlan {
  const plan: SecretPlan = { args: [], env: {}, values: [], described: [], skipped: [] }
  let inline = 0
  for (const secret of secrets) {
    if (secret.kind === 'file') {
      plan.args.push('--secret', `id=${secret.id},src=${secret.path}`)
      plan.described.push(`${secret.id} (file ${secret.path})`)
      continue
    }
    const value = secret.kind === 'value' ? secret.value : env.variable(secret.env)
    if (value === '') {
      plan.skipped.push(emptyReason(secret.id, fromFork, secret.kind === 'value' ? 'secrets' : `environment variable ${secret.env}`))
      continue
    }
    plan.values.push(value)
    if (secret.kind === 'env') {
      plan.args.push('--secret', `id=${secret.id},env=${secret.env}`)
      plan.described.push(`${secret.id} (env ${secret.env})`)
    } else {
      const name = secretVariable(inline++)
      plan.env[name] = value
      plan.args.push('--secret', `id=${secret.id},env=${name}`)
      plan.described.push(`${secret.id} (value)`)
    }
  }
  for (const source of ssh) {
    if (source.paths.length > 0) {
      plan.args.push('--ssh', `${source.id}=${source.paths.join(',')}`)
      plan.described.push(`ssh ${source.id} (${source.paths.join(', ')})`)
      continue
    }
    if (!env.sshAgent) {
      // forks do not get the deploy key an ssh-agent step would load
      if (fromFork) {
        plan.skipped.push(`ssh ${source.id}: no ssh agent (SSH_AUTH_SOCK is unset, as on runs from forks); the build runs without it`)
        continue
      }
      throw new InputError(
        'ssh',
        `${source.id} needs an ssh agent but SSH_AUTH_SOCK is unset; start an agent and add the key in an earlier step, or give ${source.id}=<key file>`
      )
    }
    plan.args.push('--ssh', source.id)
    plan.described.push(`ssh ${source.id} (agent)`)
  }
  return plan
}
