import { isIndex, OCI_INDEX, type Descriptor, type Manifest } from '../model/oci.js'
import { normalizePlatform, type Platform } from '../model/platform.js'
import { isAttestation } from './verify.js'

/**
 * The multi-arch index: every entry of every arch image (platform manifests and their
 * attestations), in the order of `platforms`. The annotations go on the index and on each
 * platform entry (attestation entries keep their own). Serialised the same way every time, so two
 * jobs assembling the same sources with the same annotations push the same digest.
 */
export function composeIndex(sources: Array<{ answer: Manifest; platform: Platform }>, annotations: Record<string, string> = {}): Buffer {
  const annotate = Object.keys(annotations).length > 0
  const manifests = sources
    .flatMap(({ answer, platform }) =>
      isIndex(answer)
        ? (answer.json.manifests as Descriptor[])
        : [{ mediaType: answer.mediaType, digest: answer.digest, size: answer.size, platform: normalizePlatform(platform) }]
    )
    .map((d) => (annotate && !isAttestation(d) ? { ...d, annotations: { ...d.annotations, ...annotations } } : d))
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests, ...(annotate ? { annotations } : {}) }))
}
