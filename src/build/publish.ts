import type { BuildConfig } from '../config/types.js'
import { ActionError } from '../model/errors.js'
import { explainAuthFailure, registryCredentials } from '../registry/auth.js'
import { RegistryClient } from '../registry/client.js'
import { READ_AFTER_WRITE, type RetryPolicy } from '../registry/retry.js'
import { pushLayout } from './oci-push.js'

/** Pushes the exported layout under the arch tag, then reads the tag back: it must be what we pushed. */
export async function publishLayout(config: BuildConfig, tag: string, layoutDir: string, env: NodeJS.ProcessEnv, retry: RetryPolicy): Promise<string> {
  const client = new RegistryClient(config.image, config.registry, registryCredentials(config, env), 'push')
  try {
    const digest = await pushLayout(client, layoutDir, tag, retry)
    const back = await retry.run(() => client.manifest(tag), READ_AFTER_WRITE)
    if (back.digest !== digest) throw new ActionError(`${config.image}:${tag} reads back as ${back.digest}, not the pushed ${digest}`)
    return digest
  } catch (error) {
    throw explainAuthFailure(error, config.registry)
  }
}

/** What the registry holds under the arch tag BuildKit just pushed. */
export async function pushedDigest(config: BuildConfig, tag: string, env: NodeJS.ProcessEnv, retry: RetryPolicy): Promise<string> {
  const client = new RegistryClient(config.image, config.registry, registryCredentials(config, env))
  try {
    return (await retry.run(() => client.manifest(tag), READ_AFTER_WRITE)).digest
  } catch (error) {
    throw explainAuthFailure(error, config.registry)
  }
}
