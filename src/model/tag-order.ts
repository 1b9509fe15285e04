import type { GitHubContext } from './github.js'
import { autoTags } from './tags.js'

// Moving tags only move forward. The `<sha>` tag and `X.Y.Z` name one build and are always
// written; a moving tag (the branch, `X.Y`, `X`, `latest`, extra tags) moves only to an index at
// least as new as the one it holds, so a late job cannot roll it back.

export const VERSION = 'org.opencontainers.image.version'
export const REVISION = 'org.opencontainers.image.revision'
export const CREATED = 'org.opencontainers.image.created'

/** How a tag of this run is ordered: not at all (always written), by release version, or by commit. */
export type TagOrder = 'always' | 'version' | 'commit'

/** The order of every tag this run writes: the sha and the exact release always; release lines by version; the rest by commit. */
export function tagOrders(tags: string[], sha: string, github: GitHubContext): Map<string, TagOrder> {
  const auto = autoTags(github)
  const release = releaseVersion(github)
  return new Map(
    tags.map((tag): [string, TagOrder] => {
      if (tag === sha || (release && tag === release)) return [tag, 'always']
      if (release && auto.includes(tag)) return [tag, 'version']
      return [tag, 'commit']
    })
  )
}

/** X.Y.Z of a `vX.Y.Z` tag push (pre-releases included), else undefined. */
export function releaseVersion(github: GitHubContext): string | undefined {
  const [first] = autoTags(github)
  return github.ref.startsWith('refs/tags/') ? first : undefined
}

const SEMVER = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?$/

/** Semantic-version precedence (a leading v allowed): negative when a < b; undefined when either is not a version. */
export function compareVersions(a: string, b: string): number | undefined {
  const x = SEMVER.exec(a)
  const y = SEMVER.exec(b)
  if (!x || !y) return undefined
  for (let i = 1; i <= 3; i++) if (Number(x[i]) !== Number(y[i])) return Number(x[i]) - Number(y[i])
  if (x[4] === y[4]) return 0
  if (x[4] === undefined) return 1
  if (y[4] === undefined) return -1
  const p = x[4].split('.')
  const q = y[4].split('.')
  for (let i = 0; i < Math.min(p.length, q.length); i++) {
    if (p[i] === q[i]) continue
    const numeric = /^\d+$/.test(p[i]) && /^\d+$/.test(q[i])
    if (numeric) return Number(p[i]) - Number(q[i])
    if (/^\d+$/.test(p[i])) return -1
    if (/^\d+$/.test(q[i])) return 1
    return p[i] < q[i] ? -1 : 1
  }
  return p.length - q.length
}

/** What a moving tag holds now: nothing, or an index with the annotations the action writes (or not). */
export type Held = { kind: 'nothing' } | { kind: 'index'; digest: string; annotations: Record<string, string> }

/** How GitHub orders this run's commit against the held one (the compare endpoint's status), when it could be asked. */
export type CommitOrder = 'ahead' | 'behind' | 'identical' | 'diverged'

export interface TagVerdict {
  tag: string
  move: boolean
  /** one line for the log and the summary */
  reason: string
  /** said as a notice: moved over an index the action did not make, or over a force-push */
  notice?: boolean
}

/** A release line (`X.Y`, `X`, `latest`): moves only to a version at least as high as the one it holds (pre-releases have no release lines). */
export function versionVerdict(tag: string, ours: string, held: Held): TagVerdict {
  if (held.kind === 'nothing') return { tag, move: true, reason: 'new tag' }
  const theirs = held.annotations[VERSION]
  if (theirs === undefined) return { tag, move: true, reason: `moved over ${short(held.digest)}, which carries no ${VERSION}`, notice: true }
  const order = compareVersions(ours, theirs)
  if (order === undefined) return { tag, move: true, reason: `moved over ${theirs} (not a version)`, notice: true }
  return order >= 0 ? { tag, move: true, reason: `moved from ${theirs} to ${ours}` } : { tag, move: false, reason: `kept at ${theirs} (newer than ${ours})` }
}

/**
 * A branch or extra tag: moves unless the commit it holds is newer. GitHub's answer decides when
 * there is one; without it, the head-commit times the indexes carry.
 */
export function commitVerdict(tag: string, ours: { sha: string; created?: string }, held: Held, order: CommitOrder | undefined): TagVerdict {
  if (held.kind === 'nothing') return { tag, move: true, reason: 'new tag' }
  const theirs = held.annotations[REVISION]
  if (theirs === undefined) return { tag, move: true, reason: `moved over ${short(held.digest)}, which carries no ${REVISION}`, notice: true }
  if (theirs === ours.sha) return { tag, move: true, reason: 'same commit' }
  const at = short(theirs)
  if (order === 'behind') return { tag, move: false, reason: `kept at ${at} (newer than this run)` }
  if (order === 'diverged') return { tag, move: true, reason: `moved from ${at}, which is not an ancestor of this commit (a force-push?)`, notice: true }
  if (order) return { tag, move: true, reason: `moved from ${at}` }
  const heldTime = Date.parse(held.annotations[CREATED] ?? '')
  const ourTime = Date.parse(ours.created ?? '')
  if (Number.isNaN(heldTime) || Number.isNaN(ourTime)) return { tag, move: true, reason: `moved from ${at} (no commit times to compare)` }
  return ourTime >= heldTime
    ? { tag, move: true, reason: `moved from ${at} (older commit time)` }
    : { tag, move: false, reason: `kept at ${at} (newer than this run)` }
}

function short(sha: string): string {
  return sha.replace(/^sha256:/, '').slice(0, 12)
}
