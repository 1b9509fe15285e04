import type { GitHubContext } from './github.js'

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
const SEMVER = /^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/

export function isValidTag(tag: string): boolean {
  return TAG.test(tag)
}

/** A branch name as a tag: `feature/Login UI` becomes `feature-Login-UI`. */
export function sanitizeBranch(branch: string): string {
  return branch
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[.-]+/, '')
    .slice(0, 128)
    .replace(/[.-]+$/, '')
}

/** Tags implied by the event: the branch on branch pushes; X.Y.Z, X.Y, X, latest on v* release tags. */
export function autoTags(github: GitHubContext): string[] {
  if (github.eventName !== 'push') return []
  if (github.ref.startsWith('refs/heads/')) {
    const tag = sanitizeBranch(github.ref.slice('refs/heads/'.length))
    return tag ? [tag] : []
  }
  if (github.ref.startsWith('refs/tags/')) {
    const m = SEMVER.exec(github.ref.slice('refs/tags/'.length))
    if (!m) return []
    const [, major, minor, patch, pre] = m
    if (pre) return [`${major}.${minor}.${patch}-${pre}`].filter(isValidTag)
    return [`${major}.${minor}.${patch}`, `${major}.${minor}`, major, 'latest']
  }
  return []
}

/** Every tag the index gets, the sha first, without duplicates. */
export function indexTags(sha: string, extra: string[], auto: boolean, github: GitHubContext): string[] {
  return [...new Set([sha, ...(auto ? autoTags(github) : []), ...extra])]
}
