// An in-process OCI distribution registry for tests: real HTTP on loopback, state in memory.
// Faithful to the distribution spec for what the action uses:
//   - GET /v2/ (ping) with no auth, Basic auth, or Bearer tokens from a token endpoint
//     (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`, scopes pull and push);
//   - blobs: HEAD/GET by digest, monolithic (POST ?digest=) and chunked uploads
//     (POST → Location → PATCH … → PUT ?digest=), cross-repository mount (POST ?mount=&from=);
//   - manifests: PUT/GET/HEAD by tag and by digest with Docker-Content-Digest, content
//     negotiation by Accept, 404 MANIFEST_UNKNOWN / BLOB_UNKNOWN bodies.
// Test knobs: a read-after-write lag per tag, wrong bytes served for a digest, forced 401/403
// answers, and an intercept hook for scripted answers. Put startFaultProxy({ target: fake.url })
// in front for transport faults.
//
// Node 20 built-ins only.

import crypto from 'node:crypto'
import http from 'node:http'

import { listen } from '../e2e/support/service.mjs'

const sha256 = (buf) => `sha256:${crypto.createHash('sha256').update(buf).digest('hex')}`
const DIGEST = /^sha256:[0-9a-f]{64}$/
const DEFAULT_MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json'

/**
 * @typedef {object} FakeRegistry
 * @property {string} url       `http://127.0.0.1:PORT`
 * @property {string} host      `127.0.0.1:PORT` (what the action takes as `registry`)
 * @property {{method: string, path: string, url: string, status: number, authorization?: string}[]} seen
 * @property {(tag: string, seconds: number) => void} lag  hide `repo:tag` (or every tag when tag is '*')
 *   for `seconds` after each push of it
 * @property {(digest: string, bytes?: Buffer|string|null) => void} serveWrongBytes  GET of this blob or
 *   manifest answers other bytes (under the same Docker-Content-Digest); undo with `serveWrongBytes(d, null)`
 * @property {(status: 401|403|null, match?: RegExp) => void} deny  answer every /v2/ request whose path
 *   matches (default: all) with this status; `deny(null)` undoes it
 * @property {(fn: ((req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, body: Buffer) => boolean|void) | null) => void} intercept
 *   a hook that sees each request first and answers it itself by returning true
 * @property {(repo: string, body: Buffer|string) => string} putBlob  seed a blob, returns its digest
 * @property {(repo: string, ref: string, body: Buffer|string|object, mediaType?: string) => string} putManifest
 *   seed a manifest (by tag or digest), returns its digest; tags pushed so are not lagged
 * @property {(repo: string, ref: string) => {digest: string, mediaType: string, body: Buffer}|undefined} manifest
 * @property {(digest: string) => Buffer|undefined} blob
 * @property {() => Promise<void>} close
 */

/**
 * @param {object} [o]
 * @param {number} [o.port=0]
 * @param {string} [o.host='127.0.0.1']
 * @param {null|'basic'|'bearer'} [o.auth=null]
 * @param {string} [o.username='user']
 * @param {string} [o.password='pass']
 * @param {string} [o.service='fake-registry']  the Bearer challenge's service
 * @param {string} [o.tokenPath='/token']
 * @returns {Promise<FakeRegistry>}
 */
export async function startFakeRegistry({
  port = 0,
  host = '127.0.0.1',
  auth = null,
  username = 'user',
  password = 'pass',
  service = 'fake-registry',
  tokenPath = '/token'
} = {}) {
  /** @type {Map<string, Buffer>} digest → bytes */
  const blobs = new Map()
  /** @type {Map<string, Set<string>>} repo → digests linked into it */
  const links = new Map()
  /** @type {Map<string, {digest: string, mediaType: string, body: Buffer}>} `repo@digest` → manifest */
  const manifests = new Map()
  /** @type {Map<string, {digest: string, visibleAt: number}>} `repo:tag` → tag */
  const tags = new Map()
  /** @type {Map<string, {repo: string, chunks: Buffer[], size: number}>} */
  const uploads = new Map()
  /** @type {Map<string, Set<string>>} token → granted `repo:action` */
  const tokens = new Map()
  const lags = new Map()
  const wrong = new Map()
  let denial = null
  let hook = null
  const seen = []
  const basic = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`

  const link = (repo, digest) => {
    if (!links.has(repo)) links.set(repo, new Set())
    links.get(repo).add(digest)
  }
  const storeManifest = (repo, ref, body, mediaType, lagged) => {
    const digest = sha256(body)
    manifests.set(`${repo}@${digest}`, { digest, mediaType, body })
    if (!DIGEST.test(ref)) {
      const lag = lags.get(`${repo}:${ref}`) ?? lags.get('*') ?? 0
      tags.set(`${repo}:${ref}`, { digest, visibleAt: lagged ? Date.now() + lag * 1000 : 0 })
    }
    return digest
  }
  const lookup = (repo, ref, now = Date.now()) => {
    if (DIGEST.test(ref)) return manifests.get(`${repo}@${ref}`)
    const t = tags.get(`${repo}:${ref}`)
    if (!t || t.visibleAt > now) return undefined
    return manifests.get(`${repo}@${t.digest}`)
  }

  const server = http.createServer(async (req, res) => {
    const chunks = []
    for await (const c of req) chunks.push(c)
    const body = Buffer.concat(chunks)
    const u = new URL(req.url ?? '/', 'http://x')
    const entry = { method: req.method ?? 'GET', path: u.pathname, url: req.url ?? '/', status: 0, authorization: req.headers.authorization }
    seen.push(entry)
    const base = { 'Docker-Distribution-Api-Version': 'registry/2.0' }
    const send = (status, headers = {}, payload) => {
      entry.status = status
      const buf = payload === undefined ? Buffer.alloc(0) : Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
      res.writeHead(status, { ...base, 'Content-Length': String(buf.length), ...headers })
      res.end(req.method === 'HEAD' ? undefined : buf)
    }
    const error = (status, code, message, headers = {}) =>
      send(status, { 'Content-Type': 'application/json', ...headers }, JSON.stringify({ errors: [{ code, message, detail: null }] }))

    if (hook && hook(req, res, body) === true) {
      entry.status = res.statusCode
      return
    }

    // token endpoint (Bearer mode)
    if (auth === 'bearer' && u.pathname === tokenPath) {
      if (req.headers.authorization !== basic) return error(401, 'UNAUTHORIZED', 'bad credentials', { 'WWW-Authenticate': 'Basic realm="fake-registry"' })
      const granted = new Set()
      for (const s of u.searchParams.getAll('scope')) {
        const m = /^repository:([^:]+):(.+)$/.exec(s)
        if (m) for (const a of m[2].split(',')) granted.add(`${m[1]}:${a}`)
      }
      const token = crypto.randomBytes(16).toString('hex')
      tokens.set(token, granted)
      return send(200, { 'Content-Type': 'application/json' }, JSON.stringify({ token, access_token: token, expires_in: 300 }))
    }
    if (!u.pathname.startsWith('/v2')) return error(404, 'NOT_FOUND', 'not found')
    if (denial && denial.match.test(u.pathname)) return error(denial.status, denial.status === 401 ? 'UNAUTHORIZED' : 'DENIED', 'denied by the test')

    // what the request needs
    const upload = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(u.pathname)
    const item = upload ? null : /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(u.pathname)
    const repo = upload?.[1] ?? item?.[1]
    const action = req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'push'
    if (auth === 'basic' && req.headers.authorization !== basic) {
      return error(401, 'UNAUTHORIZED', 'authentication required', { 'WWW-Authenticate': 'Basic realm="fake-registry"' })
    }
    if (auth === 'bearer') {
      const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')
      const grant = m ? tokens.get(m[1]) : undefined
      const mount = upload && u.searchParams.get('from')
      const ok = grant && (!repo || (grant.has(`${repo}:${action}`) && (!mount || grant.has(`${mount}:pull`))))
      if (!ok) {
        const scope = repo ? `,scope="repository:${repo}:${action === 'push' ? 'pull,push' : 'pull'}"` : ''
        return error(401, 'UNAUTHORIZED', 'authentication required', {
          'WWW-Authenticate': `Bearer realm="http://${req.headers.host}${tokenPath}",service="${service}"${scope}`
        })
      }
    }

    if (u.pathname === '/v2/' || u.pathname === '/v2') return send(200, { 'Content-Type': 'application/json' }, '{}')

    if (upload) {
      const id = upload[2]
      const digest = u.searchParams.get('digest')
      const done = (d) => {
        link(repo, d)
        return send(201, { Location: `/v2/${repo}/blobs/${d}`, 'Docker-Content-Digest': d })
      }
      if (req.method === 'POST' && !id) {
        const from = u.searchParams.get('mount')
        if (from && u.searchParams.get('from') && links.get(u.searchParams.get('from'))?.has(from)) return done(from)
        if (digest) {
          if (sha256(body) !== digest) return error(400, 'DIGEST_INVALID', 'provided digest did not match uploaded content')
          blobs.set(digest, body)
          return done(digest)
        }
        const uuid = crypto.randomUUID()
        uploads.set(uuid, { repo, chunks: [], size: 0 })
        return send(202, { Location: `/v2/${repo}/blobs/uploads/${uuid}`, Range: '0-0', 'Docker-Upload-UUID': uuid })
      }
      const up = uploads.get(id)
      if (!up || up.repo !== repo) return error(404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry')
      const range = () => ({ Range: `0-${Math.max(up.size - 1, 0)}`, 'Docker-Upload-UUID': id })
      if (req.method === 'GET') return send(204, { Location: `/v2/${repo}/blobs/uploads/${id}`, ...range() })
      if (req.method === 'DELETE') {
        uploads.delete(id)
        return send(204)
      }
      if (req.method === 'PATCH' || req.method === 'PUT') {
        const cr = /^(\d+)-(\d+)$/.exec(req.headers['content-range'] ?? '')
        if (cr && Number(cr[1]) !== up.size) return send(416, { Location: `/v2/${repo}/blobs/uploads/${id}`, ...range() })
        up.chunks.push(body)
        up.size += body.length
        if (req.method === 'PATCH') return send(202, { Location: `/v2/${repo}/blobs/uploads/${id}`, ...range() })
        const all = Buffer.concat(up.chunks)
        if (!digest || sha256(all) !== digest) return error(400, 'DIGEST_INVALID', 'provided digest did not match uploaded content')
        uploads.delete(id)
        blobs.set(digest, all)
        return done(digest)
      }
      return error(405, 'UNSUPPORTED', 'method not allowed')
    }

    if (item && item[2] === 'blobs') {
      const digest = item[3]
      if ((req.method === 'GET' || req.method === 'HEAD') && links.get(repo)?.has(digest) && blobs.has(digest)) {
        const bytes = wrong.get(digest) ?? blobs.get(digest)
        return send(200, { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest }, bytes)
      }
      if (req.method === 'GET' || req.method === 'HEAD') return error(404, 'BLOB_UNKNOWN', 'blob unknown to registry')
      return error(405, 'UNSUPPORTED', 'method not allowed')
    }

    if (item && item[2] === 'manifests') {
      const ref = item[3]
      if (req.method === 'PUT') {
        const mediaType =
          (req.headers['content-type'] ?? '').split(';')[0].trim() ||
          (() => {
            try {
              return JSON.parse(body.toString('utf8')).mediaType
            } catch {
              return undefined
            }
          })()
        if (!mediaType) return error(400, 'MANIFEST_INVALID', 'no media type')
        if (DIGEST.test(ref) && sha256(body) !== ref) return error(400, 'DIGEST_INVALID', 'manifest digest did not match')
        const digest = storeManifest(repo, ref, body, mediaType, true)
        return send(201, { Location: `/v2/${repo}/manifests/${digest}`, 'Docker-Content-Digest': digest })
      }
      if (req.method === 'GET' || req.method === 'HEAD') {
        const m = lookup(repo, ref)
        if (!m) return error(404, 'MANIFEST_UNKNOWN', 'manifest unknown')
        const accept = String(req.headers.accept ?? '')
          .split(',')
          .map((s) => s.split(';')[0].trim())
          .filter(Boolean)
        if (accept.length && !accept.includes(m.mediaType) && !accept.includes('*/*')) {
          return error(404, 'MANIFEST_UNKNOWN', `manifest unknown: ${m.mediaType} is not acceptable`)
        }
        return send(200, { 'Content-Type': m.mediaType, 'Docker-Content-Digest': m.digest }, wrong.get(m.digest) ?? m.body)
      }
      return error(405, 'UNSUPPORTED', 'method not allowed')
    }
    return error(404, 'NOT_FOUND', 'not found')
  })

  const l = await listen(server, { port, host })
  const toBuf = (b) => (Buffer.isBuffer(b) ? b : Buffer.from(typeof b === 'string' ? b : JSON.stringify(b)))
  return {
    url: l.origin,
    host: l.hostPort,
    seen,
    lag: (tag, seconds) => lags.set(tag, seconds),
    serveWrongBytes: (digest, bytes) => {
      if (bytes === null) wrong.delete(digest)
      else wrong.set(digest, bytes === undefined ? Buffer.from(`not the bytes of ${digest}`) : toBuf(bytes))
    },
    deny: (status, match = /./) => {
      denial = status ? { status, match } : null
    },
    intercept: (fn) => {
      hook = fn
    },
    putBlob: (repo, b) => {
      const buf = toBuf(b)
      const d = sha256(buf)
      blobs.set(d, buf)
      link(repo, d)
      return d
    },
    putManifest: (repo, ref, b, mediaType) => {
      const buf = toBuf(b)
      let mt = mediaType
      if (!mt) {
        try {
          mt = JSON.parse(buf.toString('utf8')).mediaType
        } catch {}
      }
      return storeManifest(repo, ref, buf, mt ?? DEFAULT_MANIFEST_TYPE, false)
    },
    manifest: (repo, ref) => lookup(repo, ref),
    blob: (digest) => blobs.get(digest),
    close: l.close
  }
}
