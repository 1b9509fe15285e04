import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  attestationManifestProblem,
  describeAttached,
  MAX_STATEMENT_BYTES,
  MAX_STATEMENTS,
  provenanceMode,
  referenceProblem,
  statementLayers,
  statementProblem
} from '../../src/manifest/attestations.js'
import type { Descriptor } from '../../src/model/oci.js'

/**
 * Real documents, byte for byte, as the current engine (Docker 28.5, BuildKit 0.25, buildx 0.29)
 * pushed them for linux/arm64 builds of one image with `--provenance=mode=min` and `mode=max`, each
 * as SLSA v0.2 (this engine's default) and `version=v1`; the SPDX statement is hand-made in BuildKit's shape (no SBOM scanner in the test bed).
 */
const text = (name: string) => readFileSync(new URL(`../fixtures/registry/attestations/${name}.json`, import.meta.url))
const doc = (name: string) => JSON.parse(text(name).toString('utf8'))
const digestOf = (name: string) => `sha256:${createHash('sha256').update(text(name)).digest('hex')}`

const REF = 'reg/img:abc-arm64'
const index = doc('arch-index-arm64')
const [platformEntry, attestationEntry] = index.manifests as Descriptor[]
const image = platformEntry.digest
const other = 'sha256:1111111111111111111111111111111111111111111111111111111111111111'
const attestation = doc('attestation-manifest')
const [layer] = attestation.layers as Descriptor[]
const min = doc('provenance-v0.2-min')
const max = doc('provenance-v0.2-max')
const minV1 = doc('provenance-v1-min')
const maxV1 = doc('provenance-v1-max')
const sbom = doc('sbom-spdx.handmade')
const where = { layer, manifest: attestationEntry.digest }
const sbomLayer: Descriptor = { ...layer, digest: digestOf('sbom-spdx.handmade'), annotations: { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' } }

describe('the fixtures are what the registry held', () => {
  it('hash to the digests that point at them', () => {
    expect(digestOf('attestation-manifest')).toBe(attestationEntry.digest)
    expect(digestOf('provenance-v0.2-min')).toBe(layer.digest)
    expect(min.subject[0].digest.sha256).toBe(image.slice(7))
    expect(max.subject[0].digest.sha256).toBe(image.slice(7))
    expect(minV1.subject[0].digest.sha256).toBe(image.slice(7))
  })
})

describe('an attestation manifest must point at the platform manifest beside it', () => {
  it('passes what BuildKit pushed', () => {
    expect(referenceProblem(REF, attestationEntry, image)).toBeUndefined()
    expect(attestationManifestProblem(REF, attestationEntry.digest, attestation, image)).toBeUndefined()
  })
  it('names the image and both digests when the descriptor points elsewhere', () => {
    const moved = { ...attestationEntry, annotations: { ...attestationEntry.annotations, 'vnd.docker.reference.digest': other } }
    expect(referenceProblem(REF, moved, image)).toBe(`${REF}: attestation manifest ${attestationEntry.digest} points at ${other}, not at ${image} beside it`)
  })
  it('refuses a descriptor that names no image', () => {
    const bare = { ...attestationEntry, annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } }
    expect(referenceProblem(REF, bare, image)).toMatch(/names no image \(no vnd.docker.reference.digest\), not at sha256:07285ce0/)
  })
  it('checks the OCI subject of the artifact form (oci-artifact=true)', () => {
    const artifact = { ...attestation, subject: { mediaType: platformEntry.mediaType, digest: image, size: platformEntry.size } }
    expect(attestationManifestProblem(REF, 'sha256:att', artifact, image)).toBeUndefined()
    expect(attestationManifestProblem(REF, 'sha256:att', { ...artifact, subject: { ...artifact.subject, digest: other } }, image)).toBe(
      `${REF}: attestation manifest sha256:att has subject ${other}, not ${image}`
    )
  })
  it('bounds the requests and the bytes it will read', () => {
    const many = { ...attestation, layers: Array.from({ length: MAX_STATEMENTS + 1 }, () => layer) }
    expect(attestationManifestProblem(REF, 'sha256:att', many, image)).toMatch(/holds 33 in-toto statements, more than 32/)
    const huge = { ...attestation, layers: [{ ...layer, size: MAX_STATEMENT_BYTES + 1 }] }
    expect(attestationManifestProblem(REF, 'sha256:att', huge, image)).toMatch(
      new RegExp(`in-toto statement ${layer.digest} .* is ${MAX_STATEMENT_BYTES + 1} bytes`)
    )
  })
  it('reads only in-toto layers', () => {
    const mixed = { ...attestation, layers: [{ mediaType: 'application/vnd.example.other', digest: other, size: 3 }, layer] }
    expect(statementLayers(mixed)).toEqual([layer])
    expect(statementLayers({})).toEqual([])
  })
})

describe('its in-toto statements must name that platform manifest', () => {
  it('passes what BuildKit wrote', () => {
    expect(statementProblem(REF, where, min, image)).toBeUndefined()
    expect(statementProblem(REF, where, max, image)).toBeUndefined()
    for (const v1 of [minV1, maxV1]) expect(statementProblem(REF, { ...where, layer: { ...layer, annotations: {} } }, v1, image)).toBeUndefined()
    expect(statementProblem(REF, { ...where, layer: sbomLayer }, sbom, image)).toBeUndefined()
  })
  it('names the image and both digests when the subject is another image', () => {
    const foreign = { ...min, subject: [{ ...min.subject[0], digest: { sha256: other.slice(7) } }] }
    expect(statementProblem(REF, where, foreign, image)).toBe(
      `${REF}: in-toto statement ${layer.digest} of attestation manifest ${attestationEntry.digest} is about ${other}, not ${image}`
    )
  })
  it('accepts further subjects beside the image, refuses none at all', () => {
    const more = { ...min, subject: [{ name: 'file', digest: { sha256: other.slice(7) } }, ...min.subject] }
    expect(statementProblem(REF, where, more, image)).toBeUndefined()
    expect(statementProblem(REF, where, { ...min, subject: [] }, image)).toMatch(/is about no sha256 digest, not sha256:07285ce0/)
    expect(statementProblem(REF, where, { ...min, subject: [{ name: 'x', digest: { sha512: 'ab' } }] }, image)).toMatch(/is about no sha256 digest/)
  })
  it('refuses what is not a statement, and a layer annotation that misnames the predicate', () => {
    expect(statementProblem(REF, where, { hello: 'world' }, image)).toMatch(/is not an in-toto statement/)
    expect(statementProblem(REF, where, sbom, image)).toMatch(/is https:\/\/spdx.dev\/Document, but its layer says https:\/\/slsa.dev\/provenance\/v0.2/)
  })
})

describe('what the summary says is attached', () => {
  it("tells BuildKit's provenance mode from the predicate: mode=max records the build definition", () => {
    expect(provenanceMode(min.predicateType, min.predicate)).toBe('min')
    expect(provenanceMode(max.predicateType, max.predicate)).toBe('max')
    expect(provenanceMode(minV1.predicateType, minV1.predicate)).toBe('min')
    expect(provenanceMode(maxV1.predicateType, maxV1.predicate)).toBe('max')
    // a provenance that BuildKit did not write does not tell
    expect(provenanceMode(min.predicateType, { ...min.predicate, buildType: 'https://example.invalid/builder' })).toBeUndefined()
    expect(provenanceMode(sbom.predicateType, sbom.predicate)).toBeUndefined()
  })
  it('lists provenance with version and mode, SBOMs, and other predicates by type', () => {
    expect(describeAttached({ manifests: [], statements: [] })).toBe('none')
    expect(
      describeAttached({
        manifests: ['sha256:a'],
        statements: [
          { predicateType: 'https://slsa.dev/provenance/v0.2', mode: 'max' },
          { predicateType: 'https://spdx.dev/Document' },
          { predicateType: 'https://slsa.dev/provenance/v1' },
          { predicateType: 'https://example.invalid/custom' }
        ]
      })
    ).toBe('provenance (SLSA v0.2, mode=max), SBOM (SPDX), provenance (SLSA v1, mode not told by the predicate), https://example.invalid/custom')
  })
})
