// What the two doubles of the GitHub Actions cache service share (cache-double.mjs speaks v1,
// cache-v2-double.mjs v2): the runtime token, the entries and how a lookup picks one, the HTTP
// server that logs every request, and the answer helpers.
//
// The token is a JWT like the runner's ACTIONS_RUNTIME_TOKEN: its `ac` claim, a JSON string, lists
// the scopes ({Scope, Permission}: 1 read, 2 write). Clients read it without verifying it
// (go-actions-cache reads `ac`, `exp`, `nbf`); the doubles check its signature and expiry, write to
// its first writable scope and read its readable scopes in order.

import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import { listen, readBody } from './service.mjs'

const sign = (input) => crypto.createHmac('sha256', 'cache-double-not-a-secret').update(input).digest('base64url')
const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url')

/**
 * A runtime token for one `scope` (`permission` 1 read, 2 write, 3 both), or for a list of
 * `scopes` ({Scope, Permission}), e.g. a pull request's merge ref writable and main readable.
 * @param {{scope?: string, permission?: number, ttlSeconds?: number, scopes?: {Scope: string, Permission: number}[]}} [o]
 */
export function mintRuntimeToken({ scope = 'refs/heads/main', permission = 3, ttlSeconds = 6 * 3600, scopes } = {}) {
  const now = Math.floor(Date.now() / 1000)
  const claims = {
    nameid: 'dddddddd-dddd-dddd-dddd-dddddddddddd',
    scp: 'Actions.GenericRead:00000000-0000-0000-0000-000000000000 Actions.Results:cache-double',
    ac: JSON.stringify(scopes ?? [{ Scope: scope, Permission: permission }]),
    iss: 'vstoken.actions.githubusercontent.com',
    aud: 'vso:cache-double',
    // in the past, so clock skew never trips go-actions-cache's "issued in the future" check
    nbf: now - 60,
    iat: now - 60,
    exp: now + ttlSeconds
  }
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`
  return `${input}.${sign(input)}`
}

/** The `ac` claim of a runtime token (not verified), or null when it has none. */
export function decodeTokenScopes(token) {
  try {
    const ac = JSON.parse(JSON.parse(Buffer.from(String(token).split('.')[1], 'base64url').toString()).ac)
    return ac.filter((s) => typeof s?.Scope === 'string').map((s) => ({ Scope: s.Scope, Permission: Number(s.Permission) || 0 }))
  } catch {
    return null
  }
}

/**
 * Who sent a request: `{readable: scopes, writable: scope | null}` from a valid bearer token,
 * `{error}` for a missing, forged or expired one.
 */
export function callerOf(authorization) {
  const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1]
  if (!token) return { error: 'missing bearer token' }
  const [head, body, sig] = token.split('.')
  if (!sig || sign(`${head}.${body}`) !== sig) return { error: 'token signature is invalid' }
  if (JSON.parse(Buffer.from(body, 'base64url').toString()).exp < Date.now() / 1000) return { error: 'token is expired' }
  const scopes = decodeTokenScopes(token) ?? []
  return { readable: scopes.filter((s) => s.Permission & 1).map((s) => s.Scope), writable: scopes.find((s) => s.Permission & 2)?.Scope ?? null }
}

/** The cache entries of a double: created (reserved), then committed with their size. */
export function makeStore() {
  const byId = new Map()
  let nextId = 1
  let seq = 0
  return {
    byId,
    list: () => [...byId.values()],
    find: (key, version, scope) => [...byId.values()].find((e) => e.key === key && e.version === version && e.scope === scope),
    create(key, version, scope) {
      const e = { id: nextId++, key, version, scope, committed: false, size: undefined, seq: 0, createdAt: new Date().toISOString() }
      byId.set(e.id, e)
      return e
    },
    commit(e, size) {
      Object.assign(e, { committed: true, size, seq: ++seq, committedAt: new Date().toISOString() })
    },
    /**
     * The documented order of the real service: per readable scope (the caller's own first), each
     * key exactly, then as a prefix, the newest first; only committed entries of `version`.
     */
    lookup(keys, version, readable) {
      const usable = [...byId.values()].filter((e) => e.committed && e.version === version).sort((a, b) => b.seq - a.seq)
      for (const scope of readable) {
        for (const key of keys) {
          const inScope = usable.filter((e) => e.scope === scope)
          const hit = inScope.find((e) => e.key === key) ?? inScope.find((e) => e.key.startsWith(key))
          if (hit) return hit
        }
      }
      return undefined
    }
  }
}

export function send(res, status, body = '', headers = {}) {
  if (res.headersSent || res.destroyed) return
  const data = Buffer.from(body)
  res.writeHead(status, status === 204 ? headers : { ...headers, 'Content-Length': String(data.length) })
  res.end(data)
}

export const sendJson = (res, status, obj, headers = {}) => send(res, status, JSON.stringify(obj), { 'Content-Type': 'application/json', ...headers })

/** The error body of the v1 service (Azure DevOps style), which both v1 clients read. */
export function sendArtifactCacheError(res, status, typeKey, message) {
  const typeName = `Microsoft.Azure.DevOps.ArtifactCache.WebApi.${typeKey}, Microsoft.Azure.DevOps.ArtifactCache.WebApi`
  sendJson(res, status, { $id: '1', innerException: null, message, typeName, typeKey, errorCode: 0, eventId: 3000 })
}

/** Answer only after the request body was read (an early answer + close can RST the answer away). */
export function drainThen(req, fn) {
  if (req.complete || req.readableEnded) return fn()
  req.on('end', fn)
  req.on('error', () => {})
  req.resume()
}

/** A JSON object body, or an error with status 400. */
export async function readJson(req) {
  const raw = await readBody(req)
  try {
    const value = raw.length ? JSON.parse(raw.toString('utf8')) : {}
    if (value && typeof value === 'object' && !Array.isArray(value)) return value
  } catch {}
  throw Object.assign(new Error('the JSON request could not be decoded'), { status: 400 })
}

/** Where a client reaches this double: the origin it addressed (clients behind a forwarder get URLs they can use). */
export const originOf = (req, fallback) => (req.headers.host ? `http://${req.headers.host}` : fallback)

/**
 * Serve a double on `host` (a free port). Every request gets a record `{t, httpMethod, path, peer}`
 * that `handle(req, res, url, rec)` fills in and that is completed with `status`, `ms`, `headMs`
 * (when the answer's head went out: waiting vs transferring) and `aborted`, then kept in
 * `requests` and appended as a JSON line to `logFile`.
 */
export async function serveDouble({ host = '127.0.0.1', logFile, handle }) {
  const requests = []
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://double.invalid')
    const rec = { t: Date.now(), httpMethod: req.method, path: url.pathname, peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`, status: 0 }
    const writeHead = res.writeHead
    res.writeHead = (...args) => {
      rec.headMs ??= Date.now() - rec.t
      return writeHead.apply(res, args)
    }
    const done = () => {
      if (rec.ms !== undefined) return
      Object.assign(rec, { status: res.headersSent ? res.statusCode : 0, ms: Date.now() - rec.t })
      if (!res.writableFinished) rec.aborted = true
      requests.push(rec)
      if (logFile) fs.appendFileSync(logFile, `${JSON.stringify(rec)}\n`)
    }
    res.on('finish', done)
    res.on('close', done)
    try {
      await handle(req, res, url, rec)
    } catch (err) {
      rec.error = String(err?.message ?? err)
      if (res.headersSent) res.destroy()
      // both dialects: Twirp reads code/msg, v1 clients read message
      else sendJson(res, err?.status ?? 500, { code: err?.status === 400 ? 'malformed' : 'internal', msg: rec.error, message: rec.error })
    }
  })
  // Longer than the idle timeout of Go's HTTP client (90 s), which BuildKit's cache client uses: a
  // server that drops an idle keep-alive connection first races the client's next request on it,
  // and Go does not retry a POST that meets EOF there (BuildKit then fails the cache lookup).
  server.keepAliveTimeout = 120_000
  server.requestTimeout = 0 // big uploads
  const listening = await listen(server, { port: 0, host })
  return { requests, listening, url: `${listening.origin}/` }
}
