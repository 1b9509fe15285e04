import { getOctokit } from '@actions/github'
import type { CommitOrder } from '../model/tag-order.js'

/** Asks GitHub how two commits are ordered; undefined (with why) when it cannot be asked. */
export type CompareCommits = (base: string, head: string) => Promise<{ order: CommitOrder } | { unavailable: string }>

const STATUSES: readonly CommitOrder[] = ['ahead', 'behind', 'identical', 'diverged']

/**
 * The compare endpoint with the job's token (`contents: read`): `status` says where `head` stands
 * against `base`. No token, a server without the endpoint (older GHES), act without a token or any
 * failure make it unavailable: the caller falls back to commit times.
 */
export function githubCompare(o: { token: string; apiUrl: string; repository: string; timeoutMs?: number }): CompareCommits {
  const [owner, repo] = o.repository.split('/')
  return async (base, head) => {
    if (!o.token) return { unavailable: 'no github-token' }
    if (!owner || !repo) return { unavailable: 'no repository' }
    try {
      // a GitHub that does not answer must not hold the manifest job: the fallback takes over
      const octokit = getOctokit(o.token, { baseUrl: o.apiUrl, request: { signal: AbortSignal.timeout(o.timeoutMs ?? 10_000) } })
      const { data } = await octokit.rest.repos.compareCommitsWithBasehead({ owner, repo, basehead: `${base}...${head}`, per_page: 1 })
      const status = data.status as CommitOrder
      return STATUSES.includes(status) ? { order: status } : { unavailable: `GitHub answered status ${String(data.status)}` }
    } catch (error) {
      // an answer carries its status; no answer at all (no route, refused, timed out) carries only why
      const e = error as { status?: number; response?: unknown; message?: string }
      return { unavailable: e.response ? `GitHub answered HTTP ${e.status}` : `${o.apiUrl} did not answer: ${e.message ?? String(error)}` }
    }
  }
}
