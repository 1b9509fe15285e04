import type { Platform } from './platform.js'

// OCI and Docker media types and the shapes of what a registry holds: the one place they are defined.

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'

/** Every manifest type we read, as an Accept header: indexes first. */
export const MANIFEST_ACCEPT = [OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(', ')

const INDEX_TYPES = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST])

/** A pointer to content by digest, as indexes, manifests and OCI layouts hold them. */
export interface Descriptor {
  mediaType?: string
  digest: string
  size?: number
  platform?: Platform & { 'os.version'?: string }
  annotations?: Record<string, string>
}

/** What a registry answered for a manifest: its digest, media type and parsed body. */
export interface Manifest {
  digest: string
  mediaType: string
  size: number
  json: any
}

export function isIndex(manifest: Pick<Manifest, 'mediaType' | 'json'>): boolean {
  return INDEX_TYPES.has(manifest.mediaType) || Array.isArray(manifest.json?.manifests)
}

/** Is this reference a digest (`sha256:<hex>`) rather than a tag? */
export function isDigest(reference: string): boolean {
  return /^sha256:[0-9a-f]{64}$/.test(reference)
}
