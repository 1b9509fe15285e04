import { InputError } from '../model/errors.js'
import { lines, type InputEnvironment, type InputReader } from './read.js'

// Build secrets and ssh forwarding as the user wrote them. Where each value comes from is decided
// here; reading the values and handing them to buildx is the build plan's job (buildx/secrets.ts).

/** A `RUN --mount=type=secret` source. A value never enters argv: buildx reads it from the build's environment. */
export type BuildSecret = { id: string; kind: 'value'; value: string } | { id: string; kind: 'env'; env: string } | { id: string; kind: 'file'; path: string }

/** A `RUN --mount=type=ssh` source: the agent socket (`default`) or key files under an id. */
export interface SshSource {
  id: string
  /** empty: the runner's ssh agent (SSH_AUTH_SOCK) */
  paths: string[]
}

const SECRET_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Splits `id=rest` at the first `=`; a secret's line is never echoed (its value may be there). */
function idAndRest(input: string, line: string, index: number, what: string): [string, string] {
  const eq = line.indexOf('=')
  const id = eq < 0 ? '' : line.slice(0, eq).trim()
  if (eq < 0 || !SECRET_ID.test(id)) {
    throw new InputError(input, `line ${index + 1} is not ${what} (the id: letters, digits, _ . -; one per line)`)
  }
  return [id, line.slice(eq + 1).trim()]
}

/** The values of the `secrets` input, for masking before the input is even parsed. */
export function inlineSecretValues(text: string): string[] {
  return lines(text)
    .map((line) => line.slice(line.indexOf('=') + 1).trim())
    .filter((value) => value !== '')
}

export function parseSecrets(read: InputReader, env: InputEnvironment): BuildSecret[] {
  const secrets: BuildSecret[] = []
  lines(read('secrets')).forEach((line, i) => {
    const [id, value] = idAndRest('secrets', line, i, 'id=value')
    secrets.push({ id, kind: 'value', value })
  })
  lines(read('secret-envs')).forEach((line, i) => {
    const [id, name] = idAndRest('secret-envs', line, i, 'id=ENV_NAME')
    if (!ENV_NAME.test(name)) throw new InputError('secret-envs', `'${name}' (for ${id}) is not an environment variable name`)
    secrets.push({ id, kind: 'env', env: name })
  })
  lines(read('secret-files')).forEach((line, i) => {
    const [id, path] = idAndRest('secret-files', line, i, 'id=path')
    if (path === '' || !env.exists(path)) {
      throw new InputError('secret-files', `'${path}' (for ${id}) does not exist; write the file in an earlier step or fix the path`)
    }
    secrets.push({ id, kind: 'file', path })
  })
  const seen = new Set<string>()
  for (const s of secrets) {
    if (seen.has(s.id))
      throw new InputError(s.kind === 'value' ? 'secrets' : s.kind === 'env' ? 'secret-envs' : 'secret-files', `secret id '${s.id}' is given twice`)
    seen.add(s.id)
  }
  return secrets
}

export function parseSsh(read: InputReader, env: InputEnvironment): SshSource[] {
  const sources = lines(read('ssh')).map((line): SshSource => {
    const eq = line.indexOf('=')
    const id = eq < 0 ? line : line.slice(0, eq)
    if (!SECRET_ID.test(id)) throw new InputError('ssh', `'${line}' is not default or id=path[,path] (one per line)`)
    const paths =
      eq < 0
        ? []
        : line
            .slice(eq + 1)
            .split(',')
            .map((p) => p.trim())
    if (eq >= 0 && paths.some((p) => p === '')) throw new InputError('ssh', `'${line}' has an empty path`)
    for (const path of paths) {
      if (!env.exists(path))
        throw new InputError('ssh', `'${path}' (for ${id}) does not exist; give an agent socket or key file, or use default with an ssh agent`)
    }
    return { id, paths }
  })
  if (new Set(sources.map((s) => s.id)).size !== sources.length) throw new InputError('ssh', 'an id is given twice')
  return sources
}
