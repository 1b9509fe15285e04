import { isIndex, OCI_INDEX, type Descriptor, type Manifest } from '../model/oci.js'
import { normalizePlatform, type Platform } from '../model/platform.js'

/**
 * The multi-arch index: every entry of every arch image (platform manifests and their
 * attestations), in the order of `platforms`. Serialised the same way every time, so two jobs
 * assembling the same sources push the same digest.
 */
export function composeIndex(sources: Array<{ answer: Manifest; platform: Platform }>): Buffer {
  const manifests = sources.flatMap(({ answer, platform }) =>
    isIndex(answer)
      ? (answer.json.manifests as Descriptor[])
      : [{ mediaType: answer.mediaType, digest: answer.digest, size: answer.size, platform: normalizePlatform(platform) }]
  )
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }))
}
