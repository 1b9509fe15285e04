#!/usr/bin/env node
// Test double of the GitHub Actions cache service, v1 protocol
// (`${ACTIONS_CACHE_URL}_apis/artifactcache/...`).
//
// Speaks the dialect expected by both real clients we care about:
//   - @actions/cache (v1 path, ACTIONS_CACHE_SERVICE_V2 unset): getJson/postJson with
//     `Accept: application/json;api-version=6.0-preview.1`, reads `cacheId`,
//     `archiveLocation`, `cacheKey`; treats 204 as a miss; downloads the archive with a plain
//     GET (no auth) and checks Content-Length.
//   - tonistiigi/go-actions-cache (BuildKit `type=gha`): parses the runtime token as a JWT
//     (claims `ac` as a JSON string, `exp`, `nbf`), treats an empty body as a miss, reserves
//     with `{key, version}` and expects `cacheID` (Go JSON is case-insensitive), maps a 409
//     whose `typeKey` contains "AlreadyExists" to os.ErrExist (SaveMutable relies on it),
//     retries only 429, and downloads with open-ended `Range: bytes=N-` requiring a
//     `Content-Range: bytes N-...` answer.
//
// Node 20 built-ins only.

import http from 'node:http'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { Transform } from 'node:stream'
import { listen, readBody, runServiceCli } from './service.mjs'

const API_PREFIX = '/_apis/artifactcache/'
const ARCHIVE_PREFIX = '/_archives/'
const CONTROL_PREFIX = '/__double/'

// ---------------------------------------------------------------------------------------------
// Tokens

function b64url(input) {
  return Buffer.from(input).toString('base64url')
}

/**
 * Mint a JWT-shaped ACTIONS_RUNTIME_TOKEN. The signature is an HMAC with a throw-away key; the
 * double never verifies it (neither does go-actions-cache, which uses ParseUnverified).
 *
 * @param {object} [opts]
 * @param {string} [opts.scope='refs/heads/main'] scope of the single access-control entry
 * @param {number} [opts.permission=3] 1 = read, 2 = write, 3 = both
 * @param {number} [opts.ttlSeconds=21600]
 * @param {{Scope: string, Permission: number}[]} [opts.scopes] full list (overrides scope/permission),
 *   e.g. a feature branch with write plus the default branch read-only.
 * @param {object} [opts.extraClaims]
 * @returns {string}
 */
export function mintRuntimeToken({ scope = 'refs/heads/main', permission = 3, ttlSeconds = 6 * 3600, scopes, extraClaims = {} } = {}) {
  const now = Math.floor(Date.now() / 1000)
  const ac = scopes ?? [{ Scope: scope, Permission: permission }]
  const header = { alg: 'HS256', typ: 'JWT' }
  const payload = {
    nameid: 'dddddddd-dddd-dddd-dddd-dddddddddddd',
    scp: 'Actions.GenericRead:00000000-0000-0000-0000-000000000000 Actions.Results:cache-double',
    ac: JSON.stringify(ac),
    iss: 'vstoken.actions.githubusercontent.com',
    aud: 'vso:cache-double',
    // nbf a little in the past so clock skew between processes never trips go-actions-cache's
    // "future issue time" check.
    nbf: now - 60,
    iat: now - 60,
    exp: now + ttlSeconds,
    ...extraClaims
  }
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`
  const sig = crypto.createHmac('sha256', 'cache-double-not-a-secret').update(signingInput).digest()
  return `${signingInput}.${sig.toString('base64url')}`
}

/** Decode (without verifying) the `ac` claim of a runtime token. Returns null if not a JWT. */
export function decodeTokenScopes(token) {
  try {
    const parts = String(token).split('.')
    if (parts.length !== 3) return null
    const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'))
    if (typeof payload.ac !== 'string') return null
    const ac = JSON.parse(payload.ac)
    if (!Array.isArray(ac)) return null
    return ac.filter((s) => s && typeof s.Scope === 'string').map((s) => ({ Scope: s.Scope, Permission: Number(s.Permission) || 0 }))
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function sendJson(res, status, body, extraHeaders = {}) {
  const data = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body))
  const headers = { ...extraHeaders }
  if (data.length) headers['Content-Type'] = 'application/json; charset=utf-8'
  headers['Content-Length'] = String(data.length)
  res.writeHead(status, headers)
  res.end(data)
}

/** Azure DevOps / artifact-cache style error body (what both clients know how to read). */
function apiError(message, typeKey = 'ArtifactCacheException') {
  return {
    $id: '1',
    innerException: null,
    message,
    typeName: `Microsoft.Azure.DevOps.ArtifactCache.WebApi.${typeKey}, Microsoft.Azure.DevOps.ArtifactCache.WebApi`,
    typeKey,
    errorCode: 0,
    eventId: 3000
  }
}

async function readJson(req) {
  const buf = await readBody(req)
  if (!buf.length) return {}
  try {
    return JSON.parse(buf.toString('utf8'))
  } catch {
    throw Object.assign(new Error('invalid JSON body'), { status: 400 })
  }
}

/** Merge [start,end] (inclusive) intervals and return whether they cover [0,size). */
function coversExactly(ranges, size) {
  if (size === 0) return true
  const sorted = [...ranges].sort((a, b) => a[0] - b[0])
  let next = 0
  for (const [s, e] of sorted) {
    if (s > next) return false
    next = Math.max(next, e + 1)
  }
  return next >= size
}

/**
 * Parse a single `Range: bytes=...` header against a resource of `size` bytes.
 * Returns null (serve whole), {start,end}, or 'unsatisfiable'.
 */
function parseRange(header, size) {
  if (!header) return null
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (!m) return null // multi-range or junk: serve the whole thing
  const [, a, b] = m
  let start
  let end
  if (a === '' && b === '') return null
  if (a === '') {
    const n = Number(b) // suffix range: last n bytes
    if (n === 0) return 'unsatisfiable'
    start = Math.max(0, size - n)
    end = size - 1
  } else {
    start = Number(a)
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
  }
  if (start >= size || start > end) return 'unsatisfiable'
  return { start, end }
}

// ---------------------------------------------------------------------------------------------
// The double

/**
 * @param {object} [opts]
 * @param {number} [opts.port=0]
 * @param {string} [opts.host='127.0.0.1']
 * @param {string} [opts.storageDir] where archives are kept (default: a fresh temp dir, removed on close)
 * @param {string} [opts.token] runtime token to hand out (default: mintRuntimeToken())
 * @param {boolean} [opts.isolateScopes=true] only show entries whose scope is readable by the
 *   caller's token (like the real service); tokens that are not JWTs see everything.
 * @param {(entry: object) => void} [opts.onRequest] called with every log entry
 */
export async function startCacheDouble({ port = 0, host = '127.0.0.1', storageDir, token = mintRuntimeToken(), isolateScopes = true, onRequest } = {}) {
  const ownsStorage = !storageDir
  const dir = storageDir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'cache-double-')))
  await fsp.mkdir(dir, { recursive: true })

  /** @type {Map<number, any>} */
  const store = new Map()
  const requests = []
  let nextId = 1
  let seq = 0
  let failAll = false // false | status number
  let baseUrl = ''

  const archiveSecret = crypto.randomBytes(8).toString('hex')

  function log(entry) {
    requests.push(entry)
    if (onRequest) {
      try {
        onRequest(entry)
      } catch {
        /* ignore observer errors */
      }
    }
  }

  function callerScopes(tok) {
    const scopes = decodeTokenScopes(tok)
    if (!scopes || scopes.length === 0) return { scopes: null, writeScope: '' }
    const writable = scopes.find((s) => s.Permission & 2)
    return { scopes, writeScope: writable ? writable.Scope : null }
  }

  function visibleScopes(scopes) {
    // ordered list of readable scopes, or null for "everything"
    if (!isolateScopes || !scopes) return null
    return scopes.filter((s) => s.Permission & 1).map((s) => s.Scope)
  }

  function archiveUrl(entry) {
    return `${baseUrl}_archives/${entry.id}?sig=${archiveSecret}-${entry.id}`
  }

  function publicEntry(e) {
    return {
      id: e.id,
      key: e.key,
      version: e.version,
      scope: e.scope,
      size: e.size,
      cacheSize: e.cacheSize,
      committed: e.committed,
      createdAt: e.createdAt,
      committedAt: e.committedAt,
      receivedBytes: e.receivedBytes,
      file: e.file
    }
  }

  function lookup(keys, version, readable) {
    const committed = [...store.values()].filter((e) => e.committed && e.version === version)
    const scopeOrder = readable ?? [null]
    for (const key of keys) {
      for (const scope of scopeOrder) {
        const inScope = committed.filter((e) => scope === null || e.scope === scope)
        const exact = inScope.filter((e) => e.key === key).sort((a, b) => b.seq - a.seq)[0]
        if (exact) return { entry: exact, matchedBy: 'exact', requestedKey: key }
        const prefix = inScope.filter((e) => e.key.startsWith(key)).sort((a, b) => b.seq - a.seq)[0]
        if (prefix) return { entry: prefix, matchedBy: 'prefix', requestedKey: key }
      }
    }
    return null
  }

  async function handleApi(req, res, url, rec, bearer) {
    const rest = url.pathname.slice(API_PREFIX.length)
    const { scopes, writeScope } = callerScopes(bearer)
    const readable = visibleScopes(scopes)
    rec.scopes = readable ?? undefined

    // GET cache?keys=a,b&version=v
    if (rest === 'cache' && req.method === 'GET') {
      const keys = (url.searchParams.get('keys') ?? '')
        .split(',')
        .map((k) => k.trim())
        .filter(Boolean)
      const version = url.searchParams.get('version') ?? ''
      rec.keys = keys
      rec.version = version
      if (keys.length === 0) {
        return sendJson(res, 400, apiError('keys query parameter is required', 'ArgumentException'))
      }
      const hit = lookup(keys, version, readable)
      if (!hit) {
        rec.hit = false
        res.writeHead(204)
        return res.end()
      }
      const e = hit.entry
      rec.hit = true
      rec.key = e.key
      rec.cacheId = e.id
      rec.matchedBy = hit.matchedBy
      rec.scope = e.scope
      return sendJson(res, 200, {
        scope: e.scope,
        cacheKey: e.key,
        cacheVersion: e.version,
        creationTime: e.committedAt,
        archiveLocation: archiveUrl(e)
      })
    }

    // GET caches?key=prefix  (list; @actions/cache calls it on a miss when debug is on)
    if (rest === 'caches' && req.method === 'GET') {
      const key = url.searchParams.get('key') ?? ''
      rec.key = key
      const list = [...store.values()]
        .filter((e) => e.committed && e.key.startsWith(key))
        .filter((e) => !readable || readable.includes(e.scope))
        .sort((a, b) => b.seq - a.seq)
        .map((e) => ({
          cacheKey: e.key,
          cacheVersion: e.version,
          scope: e.scope,
          creationTime: e.committedAt,
          lastAccessedTime: e.lastAccessedAt ?? e.committedAt,
          cacheSize: e.size
        }))
      return sendJson(res, 200, { totalCount: list.length, artifactCaches: list })
    }

    // POST caches {key, version, cacheSize?}  (reserve)
    if (rest === 'caches' && req.method === 'POST') {
      const body = await readJson(req)
      const key = typeof body.key === 'string' ? body.key : ''
      const version = typeof body.version === 'string' ? body.version : ''
      rec.key = key
      rec.version = version
      if (!key || !version) {
        return sendJson(res, 400, apiError('key and version are required', 'ArgumentException'))
      }
      if (key.length > 512 || key.includes(',')) {
        return sendJson(res, 400, apiError(`Key Validation Error: ${key} is not valid`, 'ArgumentException'))
      }
      if (writeScope === null) {
        return sendJson(res, 403, apiError('cache write denied: token has no writable scope', 'ArtifactCacheWriteDeniedException'))
      }
      const scope = writeScope
      const clash = [...store.values()].find((e) => e.key === key && e.version === version && e.scope === scope)
      if (clash) {
        rec.cacheId = clash.id
        return sendJson(
          res,
          409,
          apiError(`Cache already exists. Scope: ${scope}, Key: ${key}, Version: ${version}`, 'ArtifactCacheItemAlreadyExistsException')
        )
      }
      const id = nextId++
      const file = path.join(dir, `${id}.bin`)
      await fsp.writeFile(file, Buffer.alloc(0))
      const entry = {
        id,
        key,
        version,
        scope,
        cacheSize: typeof body.cacheSize === 'number' ? body.cacheSize : undefined,
        size: undefined,
        committed: false,
        createdAt: new Date().toISOString(),
        committedAt: undefined,
        file,
        ranges: [],
        receivedBytes: 0,
        seq: 0
      }
      store.set(id, entry)
      rec.cacheId = id
      rec.scope = scope
      return sendJson(res, 201, { cacheId: id })
    }

    const idMatch = /^caches\/(\d+)$/.exec(rest)
    if (idMatch) {
      const id = Number(idMatch[1])
      rec.cacheId = id
      const entry = store.get(id)
      if (!entry) {
        req.resume()
        return sendJson(res, 404, apiError(`Cache with id ${id} was not found`, 'ArtifactCacheNotFoundException'))
      }
      rec.key = entry.key
      rec.version = entry.version

      // PATCH caches/{id}  with Content-Range: bytes a-b/*
      if (req.method === 'PATCH') {
        if (entry.committed) {
          req.resume()
          return sendJson(res, 409, apiError(`Cache ${id} is already committed`, 'ArtifactCacheAlreadyCommittedException'))
        }
        const cr = /^\s*bytes\s+(\d+)-(\d+)\/(\*|\d+)\s*$/i.exec(req.headers['content-range'] ?? '')
        if (!cr) {
          req.resume()
          return sendJson(res, 400, apiError('Content-Range header is missing or malformed', 'ArgumentException'))
        }
        const start = Number(cr[1])
        const end = Number(cr[2])
        if (end < start) {
          req.resume()
          return sendJson(res, 400, apiError('Content-Range end < start', 'ArgumentException'))
        }
        const expected = end - start + 1
        let got = 0
        const counter = new Transform({
          transform(chunk, _enc, cb) {
            got += chunk.length
            if (got > expected) cb(new Error(`chunk larger than Content-Range (${expected} bytes)`))
            else cb(null, chunk)
          }
        })
        try {
          await pipeline(req, counter, fs.createWriteStream(entry.file, { flags: 'r+', start }))
        } catch (err) {
          rec.bytes = got
          if (!res.headersSent && !res.destroyed) {
            return sendJson(res, 400, apiError(`upload failed: ${err.message}`, 'ArgumentException'))
          }
          return
        }
        rec.bytes = got
        rec.range = [start, end]
        if (got !== expected) {
          return sendJson(res, 400, apiError(`Content-Range says ${expected} bytes but body had ${got}`, 'ArgumentException'))
        }
        entry.ranges.push([start, end])
        entry.receivedBytes += got
        res.writeHead(204)
        return res.end()
      }

      // POST caches/{id} {size}  (commit)
      if (req.method === 'POST') {
        const body = await readJson(req)
        const size = Number(body.size)
        rec.bytes = size
        if (!Number.isInteger(size) || size < 0) {
          return sendJson(res, 400, apiError('size is required', 'ArgumentException'))
        }
        if (entry.committed) {
          return sendJson(res, 409, apiError(`Cache ${id} is already committed`, 'ArtifactCacheAlreadyCommittedException'))
        }
        const maxEnd = entry.ranges.reduce((m, r) => Math.max(m, r[1]), -1)
        if (maxEnd + 1 > size || !coversExactly(entry.ranges, size)) {
          return sendJson(
            res,
            400,
            apiError(
              `Cache size mismatch: commit says ${size} bytes, uploaded ranges cover ${maxEnd + 1} (${entry.ranges.length} chunks, gaps or overflow)`,
              'ArtifactCacheSizeMismatchException'
            )
          )
        }
        await fsp.truncate(entry.file, size)
        entry.size = size
        entry.committed = true
        entry.committedAt = new Date().toISOString()
        entry.seq = ++seq
        res.writeHead(204)
        return res.end()
      }

      // DELETE caches/{id} (not in the real v1 API; convenient for tests)
      if (req.method === 'DELETE') {
        store.delete(id)
        await fsp.rm(entry.file, { force: true })
        res.writeHead(204)
        return res.end()
      }
    }

    req.resume()
    return sendJson(res, 404, apiError(`No route for ${req.method} ${url.pathname}`, 'NotFoundException'))
  }

  async function handleArchive(req, res, url, rec) {
    const m = /^\/_archives\/(\d+)$/.exec(url.pathname)
    const id = m ? Number(m[1]) : NaN
    rec.cacheId = Number.isNaN(id) ? undefined : id
    const entry = store.get(id)
    if (!entry || !entry.committed || url.searchParams.get('sig') !== `${archiveSecret}-${id}`) {
      res.writeHead(404, { 'Content-Type': 'application/xml', 'Content-Length': '0' })
      return res.end()
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Length': '0' })
      return res.end()
    }
    rec.key = entry.key
    rec.version = entry.version
    entry.lastAccessedAt = new Date().toISOString()
    const size = entry.size
    const common = {
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
      ETag: `"cache-${id}-${entry.seq}"`,
      'Last-Modified': new Date(entry.committedAt).toUTCString(),
      'x-ms-blob-type': 'BlockBlob'
    }
    const range = parseRange(req.headers.range, size)
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...common, 'Content-Range': `bytes */${size}`, 'Content-Length': '0' })
      return res.end()
    }
    let start = 0
    let end = size - 1
    let status = 200
    const headers = { ...common }
    if (range) {
      ;({ start, end } = range)
      status = 206
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`
      rec.range = [start, end]
    }
    const len = size === 0 ? 0 : end - start + 1
    headers['Content-Length'] = String(len)
    res.writeHead(status, headers)
    if (req.method === 'HEAD' || len === 0) return res.end()
    rec.bytes = len
    await pipeline(fs.createReadStream(entry.file, { start, end }), res)
  }

  function summarize() {
    const saves = []
    const byId = new Map()
    const restores = []
    const downloads = []
    for (const r of requests) {
      if (r.path === `${API_PREFIX}caches` && r.method === 'POST') {
        const s = {
          key: r.key,
          version: r.version,
          scope: r.scope,
          cacheId: r.cacheId,
          status: r.status,
          reserved: r.status === 201 || r.status === 200,
          conflict: r.status === 409,
          chunks: 0,
          bytes: 0,
          committed: false
        }
        saves.push(s)
        if (s.reserved) byId.set(r.cacheId, s)
      } else if (r.method === 'PATCH' && byId.has(r.cacheId)) {
        const s = byId.get(r.cacheId)
        if (r.status < 300) {
          s.chunks += 1
          s.bytes += r.bytes ?? 0
        }
      } else if (r.method === 'POST' && /\/caches\/\d+$/.test(r.path) && byId.has(r.cacheId)) {
        const s = byId.get(r.cacheId)
        if (r.status < 300) {
          s.committed = true
          s.size = r.bytes
        }
      } else if (r.path === `${API_PREFIX}cache` && r.method === 'GET') {
        restores.push({
          keys: r.keys,
          version: r.version,
          scopes: r.scopes,
          status: r.status,
          hit: r.status === 200,
          key: r.status === 200 ? r.key : undefined,
          matchedBy: r.matchedBy,
          scope: r.scope,
          cacheId: r.cacheId
        })
      } else if (r.path.startsWith(ARCHIVE_PREFIX) && r.method === 'GET') {
        downloads.push({ cacheId: r.cacheId, key: r.key, status: r.status, bytes: r.bytes, range: r.range })
      }
    }
    const count = (pred) => requests.filter(pred).length
    return {
      saves,
      restores,
      downloads,
      counts: {
        requests: requests.length,
        lookups: restores.length,
        hits: restores.filter((x) => x.hit).length,
        misses: restores.filter((x) => x.status === 204).length,
        reserves: saves.length,
        conflicts: saves.filter((x) => x.conflict).length,
        commits: saves.filter((x) => x.committed).length,
        downloads: downloads.length,
        unauthorized: count((r) => r.status === 401),
        serverErrors: count((r) => r.status >= 500)
      }
    }
  }

  async function handleControl(req, res, url) {
    const what = url.pathname.slice(CONTROL_PREFIX.length)
    if (what === 'requests' && req.method === 'GET') return sendJson(res, 200, requests)
    if (what === 'entries' && req.method === 'GET') return sendJson(res, 200, api.entries())
    if (what === 'summary' && req.method === 'GET') return sendJson(res, 200, summarize())
    if (what === 'fail' && req.method === 'POST') {
      const body = await readJson(req)
      api.setFailAll(body.failAll ?? body.status ?? true)
      return sendJson(res, 200, { failAll })
    }
    if (what === 'clear' && req.method === 'POST') {
      api.clearLog()
      return sendJson(res, 200, { ok: true })
    }
    if (what === 'reset' && req.method === 'POST') {
      await api.reset()
      return sendJson(res, 200, { ok: true })
    }
    return sendJson(res, 404, { message: 'unknown control endpoint' })
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://double.invalid')
    const rec = {
      t: Date.now(),
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: 0
    }
    const isControl = url.pathname.startsWith(CONTROL_PREFIX)
    if (!isControl) {
      res.on('finish', () => {
        rec.status = res.statusCode
        rec.ms = Date.now() - rec.t
        log(rec)
      })
      res.on('close', () => {
        if (!res.writableFinished) {
          rec.status = res.headersSent ? res.statusCode : 0
          rec.aborted = true
          rec.ms = Date.now() - rec.t
          log(rec)
        }
      })
    }
    try {
      if (isControl) return await handleControl(req, res, url)
      if (failAll) {
        req.resume()
        rec.fault = 'failAll'
        return sendJson(res, failAll, apiError('cache-double: simulated cache service outage', 'ServiceUnavailableException'))
      }
      if (url.pathname.startsWith(ARCHIVE_PREFIX)) return await handleArchive(req, res, url, rec)
      if (url.pathname.startsWith(API_PREFIX)) {
        const auth = req.headers.authorization ?? ''
        const m = /^Bearer\s+(\S+)\s*$/i.exec(auth)
        if (!m) {
          req.resume()
          return sendJson(res, 401, apiError('Bearer token required', 'UnauthorizedRequestException'), {
            'WWW-Authenticate': 'Bearer'
          })
        }
        rec.accept = req.headers.accept
        return await handleApi(req, res, url, rec, m[1])
      }
      req.resume()
      return sendJson(res, 404, { message: `cache-double: nothing at ${url.pathname}` })
    } catch (err) {
      rec.error = String(err?.message ?? err)
      if (!res.headersSent && !res.destroyed) {
        sendJson(res, err?.status ?? 500, apiError(`cache-double: ${rec.error}`))
      } else {
        res.destroy()
      }
    }
  })
  server.keepAliveTimeout = 30_000
  server.requestTimeout = 0 // big uploads

  const listening = await listen(server, { port, host })
  baseUrl = `${listening.origin}/`

  const api = {
    url: baseUrl,
    port: listening.port,
    token,
    storageDir: dir,
    requests,
    /** Env vars a client needs (v1 protocol). */
    env() {
      return { ACTIONS_CACHE_URL: baseUrl, ACTIONS_RUNTIME_TOKEN: token }
    },
    /** Snapshot of all entries, reserved and committed. */
    entries() {
      return [...store.values()].sort((a, b) => a.id - b.id).map(publicEntry)
    },
    /** Read a committed entry's bytes (for assertions). */
    async readEntry(idOrKey) {
      const e =
        typeof idOrKey === 'number' ? store.get(idOrKey) : [...store.values()].filter((x) => x.key === idOrKey && x.committed).sort((a, b) => b.seq - a.seq)[0]
      if (!e || !e.committed) return undefined
      return fsp.readFile(e.file)
    },
    /** true → every request answers 500; a number → that status; false → normal. */
    setFailAll(v) {
      failAll = v === true ? 500 : typeof v === 'number' && v >= 400 ? v : false
    },
    clearLog() {
      requests.length = 0
    },
    summarize,
    /** Forget all entries (and the log). */
    async reset() {
      for (const e of store.values()) await fsp.rm(e.file, { force: true })
      store.clear()
      requests.length = 0
    },
    mintToken(opts) {
      return mintRuntimeToken(opts)
    },
    async close() {
      await listening.close()
      if (ownsStorage) await fsp.rm(dir, { recursive: true, force: true })
    }
  }
  return api
}

// ---------------------------------------------------------------------------------------------
// CLI

runServiceCli(import.meta.url, {
  usage: '[--port N] [--host H] [--state-file F] [--storage-dir D] [--scope refs/heads/main] [--quiet]',
  options: { storageDir: 'string', scope: 'string' },
  async start(args, log) {
    const double = await startCacheDouble({
      port: args.port,
      host: args.host,
      storageDir: args.storageDir,
      token: mintRuntimeToken(args.scope ? { scope: args.scope } : {}),
      onRequest: log
    })
    return {
      state: { url: double.url, token: double.token, pid: process.pid, storageDir: double.storageDir },
      close: () => double.close()
    }
  }
})
