import { formatPlatform, normalizePlatform, samePlatform, type Platform } from './platform.js'
import type { Manifest } from './registry.js'

export interface Descriptor {
  mediaType?: string
  digest: string
  size?: number
  platform?: Platform & { 'os.version'?: string }
  annotations?: Record<string, string>
}

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const INDEX_TYPES = new Set([OCI_INDEX, 'application/vnd.docker.distribution.manifest.list.v2+json'])

export function isIndex(manifest: Pick<Manifest, 'mediaType' | 'json'>): boolean {
  return INDEX_TYPES.has(manifest.mediaType) || Array.isArray(manifest.json?.manifests)
}

/** BuildKit stores provenance and SBOM as extra index entries; they are not platforms. */
export function isAttestation(d: Descriptor): boolean {
  return d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' || (d.platform?.os === 'unknown' && d.platform?.architecture === 'unknown')
}

export function platformEntries(index: any): Descriptor[] {
  return ((index?.manifests ?? []) as Descriptor[]).filter((d) => !isAttestation(d))
}

function describe(p: Platform | undefined): string {
  return p ? formatPlatform(normalizePlatform(p)) : 'an unknown platform'
}

/**
 * For an arch image `<sha>-<arch>` (a single manifest, or an index of one platform plus attestations),
 * the digest of the one platform manifest, or a problem naming what was found instead.
 */
export function pickPlatformManifest(ref: string, answer: Manifest, expected: Platform): { digest: string } | { problem: string } {
  if (!isIndex(answer)) return { digest: answer.digest }
  const entries = platformEntries(answer.json)
  if (entries.length !== 1) {
    const found = entries.map((d) => describe(d.platform)).join(', ') || 'no platform'
    return { problem: `${ref} holds ${found}; expected exactly ${describe(expected)}` }
  }
  const [entry] = entries
  // an entry without a platform would enter the multi-arch index unnamed
  if (!entry.platform) return { problem: `${ref} holds an image without a platform; expected ${describe(expected)}` }
  if (!samePlatform(entry.platform, expected)) {
    return { problem: `${ref} is ${describe(entry.platform)}, expected ${describe(expected)}` }
  }
  return { digest: entry.digest }
}

/** The image config says which platform the binaries are for: it is the proof, not the tag. */
export function configPlatformProblem(ref: string, config: any, expected: Platform): string | undefined {
  if (!config || typeof config.os !== 'string' || typeof config.architecture !== 'string') {
    return `${ref} has no os/architecture in its image config`
  }
  const actual: Platform = { os: config.os, architecture: config.architecture, variant: config.variant }
  return samePlatform(actual, expected) ? undefined : `${ref} is ${describe(actual)}, expected ${describe(expected)}`
}

export interface VerifiedSource {
  platform: Platform
  /** digest of the platform image manifest inside the arch tag */
  manifestDigest: string
}

/** What was pushed must hold exactly the expected platforms, each the very manifest we verified. */
export function pushedIndexProblem(ref: string, answer: Manifest, sources: VerifiedSource[]): string | undefined {
  if (!isIndex(answer)) return `${ref} is a single-platform manifest, not a multi-arch index`
  const entries = platformEntries(answer.json)
  const expected = sources.map((s) => describe(s.platform)).sort()
  const found = entries.map((d) => describe(d.platform)).sort()
  if (JSON.stringify(expected) !== JSON.stringify(found)) {
    return `${ref} holds ${found.join(', ') || 'no platform'}; expected exactly ${expected.join(', ')}`
  }
  for (const source of sources) {
    const entry = entries.find((d) => d.platform && samePlatform(d.platform, source.platform))
    if (entry?.digest !== source.manifestDigest) {
      return `${ref} points ${describe(source.platform)} at ${entry?.digest}, expected ${source.manifestDigest}`
    }
  }
  return undefined
}

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

export function listPlatforms(answer: Manifest): string[] {
  return platformEntries(answer.json).map((d) => describe(d.platform))
}
