/** The parts of the workflow run that decide names, tags and whether to push. */
export interface GitHubContext {
  eventName: string
  ref: string
  sha: string
  /** owner/name of the repository the workflow runs in */
  repository: string
  owner: string
  serverUrl: string
  /** true for a pull request whose head lives in another repository, or a run in a forked repository */
  fromFork: boolean
  /** the repository's description and SPDX license, as the event payload carries them */
  description?: string
  license?: string
  /** when the pushed commit was made (push events): the same for every job of a run */
  commitTime?: string
}

const PULL_REQUEST_EVENTS = new Set(['pull_request', 'pull_request_target', 'pull_request_review', 'pull_request_review_comment'])

export function isPullRequestEvent(eventName: string): boolean {
  return PULL_REQUEST_EVENTS.has(eventName)
}

/** The subset of @actions/github's Context we read; a plain object so tests can build one. */
export interface RawContext {
  eventName: string
  ref: string
  sha: string
  serverUrl: string
  repo?: { owner: string; repo: string }
  payload: Record<string, any>
}

export function toGitHubContext(raw: RawContext, env: NodeJS.ProcessEnv): GitHubContext {
  const repository = env.GITHUB_REPOSITORY || raw.payload.repository?.full_name || ''
  const owner = env.GITHUB_REPOSITORY_OWNER || raw.payload.repository?.owner?.login || repository.split('/')[0] || ''
  const pr = raw.payload.pull_request
  const headRepo: string | undefined = pr?.head?.repo?.full_name
  const fromFork =
    Boolean(raw.payload.repository?.fork) ||
    Boolean(pr?.head?.repo?.fork) ||
    (headRepo !== undefined && repository !== '' && headRepo.toLowerCase() !== repository.toLowerCase())
  const spdx: unknown = raw.payload.repository?.license?.spdx_id
  const description: unknown = raw.payload.repository?.description
  const commitTime: unknown = raw.payload.head_commit?.timestamp
  return {
    ...(typeof description === 'string' && description.trim() !== '' ? { description: description.trim() } : {}),
    // GitHub says NOASSERTION for a license file it cannot name
    ...(typeof spdx === 'string' && spdx !== '' && spdx !== 'NOASSERTION' ? { license: spdx } : {}),
    ...(typeof commitTime === 'string' && !Number.isNaN(Date.parse(commitTime)) ? { commitTime: new Date(commitTime).toISOString() } : {}),
    eventName: raw.eventName || '',
    ref: raw.ref || '',
    sha: raw.sha || '',
    repository,
    owner,
    serverUrl: raw.serverUrl || 'https://github.com',
    fromFork
  }
}
