// Test double of the GitHub Actions cache service, v1 protocol (`${ACTIONS_CACHE_URL}_apis/artifactcache/...`):
// what GHES still speaks (@actions/cache picks v1 there) and what the "previous" engine generation
// (buildx 0.13, BuildKit < 0.20) speaks everywhere.
//
// Written against both v1 clients:
//   - @actions/cache (v1 path, ACTIONS_CACHE_SERVICE_V2 unset): `Accept: application/json;api-version=6.0-preview.1`;
//     reserve `{key, version, cacheSize}` → `cacheId`, chunks as `PATCH` with `Content-Range: bytes a-b/*`,
//     commit `{size}`; lookup reads `cacheKey` and `archiveLocation`, 204 is a miss; downloads the
//     archive without auth (HEAD for its size, then ranged GETs).
//   - go-actions-cache (BuildKit `type=gha`): an empty body is a miss; reserve `{key, version}` and
//     reads `cacheID` (Go JSON ignores case); a 409 whose `typeKey` contains "AlreadyExists" becomes
//     os.ErrExist (SaveMutable relies on it); downloads with `Range: bytes=N-` and needs `Content-Range`.
// Tokens, scopes and the lookup order are those of cache-core.mjs. Archives live in a temp dir
// removed on close. Requests are logged in `requests` (`method`, `path`, `query`, `key`, `status`, ...).

import crypto from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { readBody } from './service.mjs'
import {
  callerOf,
  drainThen,
  makeStore,
  mintRuntimeToken,
  originOf,
  readJson,
  send,
  sendArtifactCacheError as fail,
  sendJson,
  serveDouble
} from './cache-core.mjs'

export { mintRuntimeToken, decodeTokenScopes } from './cache-core.mjs'

const API = '/_apis/artifactcache/'

/** Whether the uploaded [start, end] ranges cover [0, size) exactly. */
function covers(ranges, size) {
  let next = 0
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (start > next) return false
    next = Math.max(next, end + 1)
  }
  return next === size
}

/** @param {{token?: string, host?: string}} [o] */
export async function startCacheDouble({ token = mintRuntimeToken(), host } = {}) {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cache-double-'))
  const store = makeStore()
  const secret = crypto.randomBytes(8).toString('hex')

  async function archive(req, res, url, rec) {
    const e = store.byId.get(Number(url.pathname.slice('/_archives/'.length)))
    if (!e?.committed || url.searchParams.get('sig') !== `${secret}-${e.id}`) return drainThen(req, () => send(res, 404))
    Object.assign(rec, { cacheId: e.id, key: e.key })
    const headers = { 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    let [start, end] = [0, e.size - 1]
    if (range) {
      ;[start, end] = [Number(range[1]), Math.min(range[2] ? Number(range[2]) : Infinity, e.size - 1)]
      if (start > end) return send(res, 416, '', { 'Content-Range': `bytes */${e.size}` })
      headers['Content-Range'] = `bytes ${start}-${end}/${e.size}`
    }
    res.writeHead(range ? 206 : 200, { ...headers, 'Content-Length': String(end - start + 1) })
    if (req.method === 'HEAD' || end < start) return res.end()
    rec.bytes = end - start + 1
    await pipeline(fs.createReadStream(e.file, { start, end }), res)
  }

  async function api(req, res, url, rec) {
    const caller = callerOf(req.headers.authorization)
    if (caller.error) return drainThen(req, () => fail(res, 401, 'UnauthorizedRequestException', caller.error))
    rec.scopes = caller.readable
    const rest = url.pathname.slice(API.length)
    if (rest === 'cache' && req.method === 'GET') {
      const keys = (url.searchParams.get('keys') ?? '').split(',').filter(Boolean)
      const e = store.lookup(keys, url.searchParams.get('version') ?? '', caller.readable)
      if (!e) return res.writeHead(204).end()
      Object.assign(rec, { key: e.key, cacheId: e.id, scope: e.scope })
      const archiveLocation = `${originOf(req, service.listening.origin)}/_archives/${e.id}?sig=${secret}-${e.id}`
      return sendJson(res, 200, { scope: e.scope, cacheKey: e.key, cacheVersion: e.version, creationTime: e.committedAt, archiveLocation })
    }
    if (rest === 'caches' && req.method === 'POST') {
      const { key, version } = await readJson(req)
      Object.assign(rec, { key, version })
      if (typeof key !== 'string' || !key || typeof version !== 'string' || !version) return fail(res, 400, 'ArgumentException', 'key and version are required')
      if (!caller.writable) return fail(res, 403, 'ArtifactCacheWriteDeniedException', 'cache write denied: the token has no writable cache scope')
      if (store.find(key, version, caller.writable)) {
        const message = `Cache already exists. Scope: ${caller.writable}, Key: ${key}, Version: ${version}`
        return fail(res, 409, 'ArtifactCacheItemAlreadyExistsException', message)
      }
      const e = Object.assign(store.create(key, version, caller.writable), { ranges: [] })
      e.file = path.join(dir, `${e.id}.bin`)
      await fsp.writeFile(e.file, '')
      Object.assign(rec, { cacheId: e.id, scope: e.scope })
      return sendJson(res, 201, { cacheId: e.id })
    }
    const e = store.byId.get(Number(/^caches\/(\d+)$/.exec(rest)?.[1]))
    if (e) Object.assign(rec, { cacheId: e.id, key: e.key, version: e.version })
    if (e?.committed) return drainThen(req, () => fail(res, 409, 'ArtifactCacheAlreadyCommittedException', `Cache ${e.id} is already committed`))
    if (e && req.method === 'PATCH') {
      const range = /^bytes (\d+)-(\d+)\/(\*|\d+)$/i.exec(req.headers['content-range'] ?? '')
      const [start, end] = [Number(range?.[1]), Number(range?.[2])]
      if (!range || end < start) return drainThen(req, () => fail(res, 400, 'ArgumentException', 'Content-Range header is missing or malformed'))
      const body = await readBody(req, end - start + 1)
      if (body.length !== end - start + 1)
        return fail(res, 400, 'ArgumentException', `Content-Range says ${end - start + 1} bytes, the body had ${body.length}`)
      const fh = await fsp.open(e.file, 'r+')
      await fh.write(body, 0, body.length, start).finally(() => fh.close())
      e.ranges.push([start, end])
      rec.bytes = body.length
      return res.writeHead(204).end()
    }
    if (e && req.method === 'POST') {
      const { size } = await readJson(req)
      rec.bytes = size
      if (!Number.isInteger(size) || size < 0 || !covers(e.ranges, size)) {
        return fail(res, 400, 'ArtifactCacheSizeMismatchException', `commit says ${size} bytes, the uploaded ranges say otherwise`)
      }
      await fsp.truncate(e.file, size)
      store.commit(e, size)
      return res.writeHead(204).end()
    }
    drainThen(req, () => fail(res, 404, 'ArtifactCacheNotFoundException', `nothing at ${req.method} ${url.pathname}`))
  }

  const service = await serveDouble({
    host,
    handle(req, res, url, rec) {
      Object.assign(rec, { method: req.method, query: Object.fromEntries(url.searchParams) })
      if (url.pathname.startsWith('/_archives/')) return archive(req, res, url, rec)
      if (url.pathname.startsWith(API)) return api(req, res, url, rec)
      drainThen(req, () => send(res, 404))
    }
  })
  const { requests, listening } = service
  return {
    /** ACTIONS_CACHE_URL (with its trailing slash, like the runner's) */
    url: service.url,
    token,
    requests,
    entries: () => store.list(),
    clearLog: () => void (requests.length = 0),
    async close() {
      await listening.close()
      await fsp.rm(dir, { recursive: true, force: true })
    }
  }
}
