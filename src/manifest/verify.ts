import * as core from '@actions/core'
import { ActionError } from '../model/errors.js'
import { formatPlatform, normalizePlatform, samePlatform, type Platform } from '../model/platform.js'
import { isIndex, type Descriptor, type Manifest } from '../model/oci.js'
import type { RegistryClient } from '../registry/client.js'
import { waitForManifest, type WaitFor } from './wait.js'

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

export function listPlatforms(answer: Manifest): string[] {
  return platformEntries(answer.json).map((d) => describe(d.platform))
}

export interface Source extends VerifiedSource {
  ref: string
  /** what the arch tag points at (an index when BuildKit added attestations) */
  answer: Manifest
  tagDigest: string
  /** when the image was built, from its config */
  created?: string
}

/** Waits until the arch tag exists, then proves from its image config that it is the expected platform. */
export async function verifySource(
  client: RegistryClient,
  source: { ref: string; tag: string; platform: Platform },
  wait: Omit<WaitFor, 'ref' | 'tag'>
): Promise<Source> {
  const { ref, platform } = source
  const answer = await waitForManifest(client, { ...wait, ref, tag: source.tag })
  const picked = pickPlatformManifest(ref, answer, platform)
  if ('problem' in picked) throw new ActionError(`${picked.problem}; the index was not written`)
  const manifest = picked.digest === answer.digest ? answer : await client.readBack(picked.digest)
  const configDigest = manifest.json?.config?.digest
  if (!configDigest) throw new ActionError(`${ref} has no image config; the index was not written`)
  const imageConfig = await client.blobJson(configDigest)
  const problem = configPlatformProblem(ref, imageConfig, platform)
  if (problem) throw new ActionError(`${problem}; the index was not written`)
  core.info(`${ref} is ${formatPlatform(platform)} (${picked.digest})`)
  const created = typeof imageConfig.created === 'string' && !Number.isNaN(Date.parse(imageConfig.created)) ? imageConfig.created : undefined
  return { platform, manifestDigest: picked.digest, tagDigest: answer.digest, answer, ref, ...(created ? { created } : {}) }
}
