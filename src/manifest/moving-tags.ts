import * as core from '@actions/core'
import type { CompareCommits } from '../github/compare.js'
import { ClassifiedError } from '../model/errors.js'
import { isIndex } from '../model/oci.js'
import { commitVerdict, REVISION, VERSION, versionVerdict, type Held, type TagOrder, type TagVerdict } from '../model/tag-order.js'
import type { RegistryClient } from '../registry/client.js'

/** What this run's index is: its commit, its release version (on `v*` pushes), its annotations and the pushed commit's time (push events only). */
export interface OurIndex {
  sha: string
  version?: string
  annotations: Record<string, string>
  commitTime?: string
}

/** What a tag holds now: a manifest that is not there is nothing; anything else carries its annotations (or none). */
export async function readHeld(registry: RegistryClient, tag: string): Promise<Held> {
  try {
    const answer = await registry.manifest(tag)
    return { kind: 'index', digest: answer.digest, annotations: isIndex(answer) ? (answer.json.annotations ?? {}) : {} }
  } catch (error) {
    if (error instanceof ClassifiedError && error.outcome === 'absent') return { kind: 'nothing' }
    throw error
  }
}

/**
 * Decides for every moving tag whether it moves to this run's index: release lines by version,
 * the rest by commit (GitHub's compare, else the commit times, said once). One line per tag.
 */
export async function decideMovingTags(
  registry: RegistryClient,
  ours: OurIndex,
  orders: Map<string, TagOrder>,
  compare: CompareCommits
): Promise<TagVerdict[]> {
  const verdicts: TagVerdict[] = []
  let fallbackSaid = false
  for (const [tag, order] of orders) {
    if (order === 'always') continue
    const held = await readHeld(registry, tag)
    let verdict: TagVerdict
    // compared as written: the annotation, which the annotations input may have set
    if (order === 'version' && ours.version) verdict = versionVerdict(tag, ours.annotations[VERSION] ?? ours.version, held)
    else {
      const theirs = held.kind === 'index' ? held.annotations[REVISION] : undefined
      const asked = theirs && theirs !== ours.sha ? await compare(theirs, ours.sha) : undefined
      if (asked && 'unavailable' in asked && !fallbackSaid) {
        core.notice(`GitHub could not be asked which commit is newer (${asked.unavailable}); ordering moving tags by the head-commit time the indexes carry`)
        fallbackSaid = true
      }
      verdict = commitVerdict(tag, { sha: ours.sha, created: ours.commitTime }, held, asked && 'order' in asked ? asked.order : undefined)
    }
    ;(verdict.notice ? core.notice : core.info)(`${tag}: ${verdict.reason}`)
    verdicts.push(verdict)
  }
  return verdicts
}
