// A double of GitHub's REST compare endpoint, `GET /repos/{owner}/{repo}/compare/{base}...{head}`,
// the one call the action makes to GitHub (before moving a branch tag). It answers as GitHub's REST
// reference describes: `status` is where head stands against base (ahead, behind, identical,
// diverged), with ahead_by/behind_by, base_commit and merge_base_commit; 404 `Not Found` for an
// unknown commit; 401 `Bad credentials` without the job's token. The commit graph is given as
// child -> parent. `configure({ status })` makes every call answer that HTTP status instead;
// `configure({ hang: true })` makes it never answer.
import http from 'node:http'

/**
 * @param {{ token: string, repository: string, parents?: Record<string, string | null> }} o
 */
export async function startGitHubApiDouble({ token, repository, parents = {} }) {
  const graph = { ...parents }
  let fault = /** @type {number | undefined} */ (undefined)
  let hang = false
  const log = []
  const ancestry = (sha) => {
    const line = []
    for (let at = sha; at !== undefined && at !== null; at = graph[at]) line.push(at)
    return line
  }
  const send = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-github-api-version-selected': '2022-11-28' })
    res.end(JSON.stringify(body))
  }
  const commit = (sha) => ({ sha, commit: { message: `commit ${sha.slice(0, 7)}` } })
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://double')
    log.push({ method: req.method, path: url.pathname, authorization: Boolean(req.headers.authorization) })
    if (hang) return
    if (fault) return send(res, fault, { message: `fault ${fault}` })
    if (req.headers.authorization !== `token ${token}` && req.headers.authorization !== `Bearer ${token}`) {
      return send(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' })
    }
    const m = /^\/repos\/([^/]+\/[^/]+)\/compare\/([0-9a-f]+)\.\.\.([0-9a-f]+)$/.exec(url.pathname)
    if (req.method !== 'GET' || !m || m[1] !== repository || !(m[2] in graph) || !(m[3] in graph)) {
      return send(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest/commits/commits#compare-two-commits' })
    }
    const [, , base, head] = m
    const fromBase = ancestry(base)
    const fromHead = ancestry(head)
    const mergeBase = fromHead.find((sha) => fromBase.includes(sha))
    if (mergeBase === undefined) return send(res, 404, { message: `No common ancestor between ${base} and ${head}.` })
    const aheadBy = fromHead.indexOf(mergeBase)
    const behindBy = fromBase.indexOf(mergeBase)
    const status = aheadBy === 0 && behindBy === 0 ? 'identical' : behindBy === 0 ? 'ahead' : aheadBy === 0 ? 'behind' : 'diverged'
    send(res, 200, {
      url: `http://double/repos/${repository}/compare/${base}...${head}`,
      base_commit: commit(base),
      merge_base_commit: commit(mergeBase),
      status,
      ahead_by: aheadBy,
      behind_by: behindBy,
      total_commits: aheadBy,
      commits: fromHead.slice(0, aheadBy).reverse().map(commit),
      files: []
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)))
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address())
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    /** adds commits: child -> parent (null for a root) */
    commits(more) {
      Object.assign(graph, more)
    },
    /** @param {{ status?: number, hang?: boolean }} [o] */
    configure({ status, hang: stall = false } = {}) {
      fault = status
      hang = stall
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve(undefined))
      })
  }
}
