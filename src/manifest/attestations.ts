import { ActionError } from '../model/errors.js'
import { isIndex, type Descriptor, type Manifest } from '../model/oci.js'
import type { RegistryClient } from '../registry/client.js'
import { isAttestation } from './verify.js'

// BuildKit's attestation storage (docs/attestations/attestation-storage.md in moby/buildkit): an
// arch index holds the platform manifest and, per platform, an attestation manifest whose
// descriptor says which manifest it is about (`vnd.docker.reference.digest`) and whose layers are
// in-toto statements, each naming its subjects by digest.

export const IN_TOTO = 'application/vnd.in-toto+json'
const REFERENCE_DIGEST = 'vnd.docker.reference.digest'
const PREDICATE_TYPE = 'in-toto.io/predicate-type'
/** BuildKit reads at most 40 MiB of an attestation before wrapping it in a statement; a little room for the wrapping */
export const MAX_STATEMENT_BYTES = 48 * 1024 * 1024
/** far more than BuildKit writes (one provenance, an SBOM per scanned target): bounds the requests per platform */
export const MAX_STATEMENTS = 32

const SLSA_V02 = 'https://slsa.dev/provenance/v0.2'
const SLSA_V1 = 'https://slsa.dev/provenance/v1'
/** the buildType BuildKit writes into its SLSA v0.2 and v1 predicates */
const BUILDKIT_V02 = 'https://mobyproject.org/buildkit@v1'
const BUILDKIT_V1 = 'https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md'

/** One in-toto statement attached to a platform manifest, as far as the summary needs it. */
export interface Statement {
  predicateType: string
  /** provenance only: BuildKit's `mode`, when the predicate tells it */
  mode?: 'min' | 'max'
}

/** What is attached to one platform manifest. */
export interface Attached {
  /** digests of the attestation manifests carried into the index */
  manifests: string[]
  statements: Statement[]
}

export const NOTHING_ATTACHED: Attached = { manifests: [], statements: [] }

/**
 * BuildKit's provenance `mode`: with mode=max it records the build's LLB definition
 * (`buildConfig`: predicate.buildConfig in SLSA v0.2, buildDefinition.internalParameters.buildConfig
 * in v1), which mode=min leaves out. Only a predicate of BuildKit's own buildType tells it.
 */
export function provenanceMode(predicateType: string, predicate: any): 'min' | 'max' | undefined {
  if (predicateType === SLSA_V02 && predicate?.buildType === BUILDKIT_V02) return predicate.buildConfig === undefined ? 'min' : 'max'
  if (predicateType === SLSA_V1 && predicate?.buildDefinition?.buildType === BUILDKIT_V1) {
    return predicate.buildDefinition.internalParameters?.buildConfig === undefined ? 'min' : 'max'
  }
  return undefined
}

function kindOf(predicateType: string): string {
  if (predicateType.startsWith('https://slsa.dev/provenance/')) return 'provenance'
  if (predicateType === 'https://spdx.dev/Document') return 'SBOM'
  return predicateType
}

/** `provenance (SLSA v0.2, mode=max), SBOM (SPDX)`; `none` when nothing is attached. */
export function describeAttached(attached: Attached): string {
  const parts = attached.statements.map(({ predicateType, mode }) => {
    const kind = kindOf(predicateType)
    if (kind === 'provenance') {
      const version = predicateType.slice('https://slsa.dev/provenance/'.length)
      return `provenance (SLSA ${version}, ${mode ? `mode=${mode}` : 'mode not told by the predicate'})`
    }
    return kind === 'SBOM' ? 'SBOM (SPDX)' : kind
  })
  return parts.length ? parts.join(', ') : 'none'
}

/** The sha256 digests an in-toto statement names as its subjects, as `sha256:<hex>`. */
function subjectDigests(statement: any): string[] {
  const subjects = Array.isArray(statement?.subject) ? statement.subject : []
  return subjects
    .map((s: any) => s?.digest?.sha256)
    .filter((hex: unknown): hex is string => typeof hex === 'string')
    .map((hex: string) => `sha256:${hex}`)
}

/** The descriptor of an attestation manifest must name the platform manifest beside it. */
export function referenceProblem(ref: string, entry: Descriptor, image: string): string | undefined {
  const named = entry.annotations?.[REFERENCE_DIGEST]
  if (named === image) return undefined
  return `${ref}: attestation manifest ${entry.digest} ${named ? `points at ${named}` : `names no image (no ${REFERENCE_DIGEST})`}, not at ${image} beside it`
}

/** The attestation manifest itself: its OCI `subject`, when it has one, and at most MAX_STATEMENTS in-toto layers. */
export function attestationManifestProblem(ref: string, digest: string, manifest: any, image: string): string | undefined {
  const subject = manifest?.subject?.digest
  if (subject !== undefined && subject !== image) return `${ref}: attestation manifest ${digest} has subject ${subject}, not ${image}`
  const layers = statementLayers(manifest)
  if (layers.length > MAX_STATEMENTS) return `${ref}: attestation manifest ${digest} holds ${layers.length} in-toto statements, more than ${MAX_STATEMENTS}`
  const large = layers.find((l) => typeof l.size === 'number' && l.size > MAX_STATEMENT_BYTES)
  if (large) return `${ref}: in-toto statement ${large.digest} of attestation manifest ${digest} is ${large.size} bytes, more than ${MAX_STATEMENT_BYTES}`
  return undefined
}

/** Layers of other media types are ignored, as the storage format asks. */
export function statementLayers(manifest: any): Descriptor[] {
  return ((Array.isArray(manifest?.layers) ? manifest.layers : []) as Descriptor[]).filter((l) => l?.mediaType === IN_TOTO)
}

/**
 * One statement (layer `layer` of attestation manifest `digest`): it must be an in-toto statement
 * naming the platform manifest among its subjects (BuildKit names exactly it; the format lets a
 * statement name objects within the image besides), of the predicate type its layer annotation says.
 */
export function statementProblem(ref: string, where: { layer: Descriptor; manifest: string }, statement: any, image: string): string | undefined {
  const at = `in-toto statement ${where.layer.digest} of attestation manifest ${where.manifest}`
  if (typeof statement?.predicateType !== 'string' || !Array.isArray(statement?.subject)) {
    return `${ref}: ${at} is not an in-toto statement (no predicateType or subject)`
  }
  const subjects = subjectDigests(statement)
  if (!subjects.includes(image)) return `${ref}: ${at} is about ${subjects[0] ?? 'no sha256 digest'}, not ${image}`
  const annotated = where.layer.annotations?.[PREDICATE_TYPE]
  if (annotated !== undefined && annotated !== statement.predicateType) {
    return `${ref}: ${at} is ${statement.predicateType}, but its layer says ${annotated}`
  }
  return undefined
}

/**
 * Checks every attestation manifest an arch image carries against the platform manifest beside it
 * (`image`): one request for each attestation manifest and one per in-toto statement, each read
 * by digest (so checked against it) and capped in size. Throws the first problem as one line; returns
 * what is attached. A plain manifest (no index) carries nothing.
 */
export async function checkAttestations(client: RegistryClient, source: { ref: string; answer: Manifest; manifestDigest: string }): Promise<Attached> {
  const { ref, answer, manifestDigest: image } = source
  if (!isIndex(answer)) return NOTHING_ATTACHED
  const fail = (problem: string) => new ActionError(`${problem}; the index was not written`)
  const attached: Attached = { manifests: [], statements: [] }
  for (const entry of (answer.json.manifests as Descriptor[]).filter(isAttestation)) {
    const reference = referenceProblem(ref, entry, image)
    if (reference) throw fail(reference)
    const manifest = (await client.readBack(entry.digest)).json
    const problem = attestationManifestProblem(ref, entry.digest, manifest, image)
    if (problem) throw fail(problem)
    for (const layer of statementLayers(manifest)) {
      const statement = await client.blobJson(layer.digest, MAX_STATEMENT_BYTES)
      const wrong = statementProblem(ref, { layer, manifest: entry.digest }, statement, image)
      if (wrong) throw fail(wrong)
      const mode = provenanceMode(statement.predicateType, statement.predicate)
      attached.statements.push({ predicateType: statement.predicateType, ...(mode ? { mode } : {}) })
    }
    attached.manifests.push(entry.digest)
  }
  return attached
}
