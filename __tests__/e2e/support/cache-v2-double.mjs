#!/usr/bin/env node
// Test double of the GitHub Actions cache service v2 (what runners offer since v1 was switched off
// on 2025-04-15): Twirp JSON at `${ACTIONS_RESULTS_URL}twirp/github.actions.results.api.v1.CacheService/*`,
// archives in Azure Blob Storage behind signed (SAS) URLs.
//
// One HTTP port serves everything a client needs, so one TCP forwarder is enough to reach it
// from a container:
//   POST /twirp/github.actions.results.api.v1.CacheService/CreateCacheEntry
//   POST /twirp/github.actions.results.api.v1.CacheService/FinalizeCacheEntryUpload
//   POST /twirp/github.actions.results.api.v1.CacheService/GetCacheEntryDownloadURL
//        anything else under /twirp/ → Twirp `bad_route` (404), like a Twirp server;
//   *    /_apis/artifactcache/...  → the v1 API as the real service answers it since the
//        shutdown: 422 ArtifactCacheServiceDecommissionedException ("This legacy service is
//        shutting down, effective April 15, 2025. ...");
//   *    /devstoreaccount1/...     → blob proxy in front of a real Azurite (a child process of
//        this double): the signed URLs point here; requests are forwarded to Azurite unless a
//        blob fault applies (503 ServerBusy, delay, throttled bytes/s);
//   GET|POST /__double/...        → admin: request log, summary, entries, faults (never logged).
//
// Dialects it was written against:
//   - @actions/cache 6.x (`lib/internal/shared/cacheTwirpClient.js`, generated protos): snake_case
//     JSON request fields (`key`, `version`, `restore_keys`, `size_bytes` as an int64 *string*),
//     `ok` / `signed_upload_url` / `message`, `ok` / `entry_id`, `ok` / `signed_download_url` /
//     `matched_key`; Twirp errors read as `body.msg`; retries 500/502/503/504 (3 s, ×1.5), gives
//     up at once on 429 (warning with the Retry-After seconds); uploads with the Azure SDK
//     (`BlockBlobClient.uploadFile`: one `Put Blob` up to 128 MiB, else `comp=block` +
//     `comp=blocklist`); downloads with a plain GET (the SDK only for *.blob.core.windows.net).
//     `ok:false` + `message: "cache write denied: ..."` and 403 + "cache read denied: ..." are
//     the policy denials it knows.
//   - tonistiigi/go-actions-cache `cache_v2.go` (BuildKit `type=gha,version=2`): sends
//     `restore_keys` = all keys *including* the primary one, `size_bytes` as a JSON number;
//     `ok:false` is a miss; a non-2xx body `{"code":"already_exists"}` becomes os.ErrExist
//     (SaveMutable relies on it for `index#N`), 429 is retried with its own backoff; blobs with
//     the Azure Go SDK (UploadStream → blocks + block list; DownloadStream with x-ms-range
//     `bytes=N-`); 401/403 on a download reloads the URL once.
//
// Token: the JWT minted by cache-double.mjs's mintRuntimeToken (its `ac` claim gives the scopes:
// entries are written to the first writable scope, read from the readable ones in order; per
// scope: exact key, then key as a prefix, then each restore key as a prefix, newest first; only
// finalized entries of the same `version`). A missing, forged or expired token gets 401.
//
// Use:
//   in-process  const d = await startCacheV2Double({ faults: {...} }); child env: d.env()
//               (ACTIONS_RESULTS_URL, ACTIONS_RUNTIME_TOKEN, ACTIONS_CACHE_SERVICE_V2=True);
//               d.legacyEnv() for a v1-only client; d.configure(faults); d.requests /
//               d.summarize() (keysRead, keysWritten, keysCommitted, counts); d.close().
//   CLI         node cache-v2-double.mjs [--state-file F] [--log-file F.jsonl] [--faults JSON]
//               [--api-fault JSON] [--blob-fault JSON] ... (see --help); prints one JSON line
//               {url, token, pid, azuritePid, controlUrl, env, ...}, logs every request as a JSON
//               line on stderr (and to --log-file), stops (Azurite too) on SIGTERM/SIGINT.
//   admin       GET {controlUrl}requests | summary | entries | faults | health;
//               POST {controlUrl}faults (body = faults, replaces them) | clear | reset.
// Faults: `api` / `blob` rules ({status, count, rate, retryAfter, methods, keyRegex, message,
// reset}), `apiDelayMs`, `blobDelayMs`, `blobBytesPerSecond`, `seed` (see the Faults typedef).
// Azurite runs under a watchdog that stops it when its parent dies, even by SIGKILL.
//
// Needs the devDependencies `azurite` and `@azure/storage-blob`.

import http from 'node:http'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { BlobServiceClient, BlobSASPermissions, SASProtocol, StorageSharedKeyCredential, generateBlobSASQueryParameters } from '@azure/storage-blob'
import { listen, makePrng, readBody, runServiceCli } from './service.mjs'
import { mintRuntimeToken, decodeTokenScopes } from './cache-double.mjs'

export const SERVICE = 'github.actions.results.api.v1.CacheService'
const TWIRP_PREFIX = '/twirp/'
const LEGACY_PREFIX = '/_apis/artifactcache/'
const CONTROL_PREFIX = '/__double/'
export const ACCOUNT = 'devstoreaccount1'
/** The well-known Azurite / storage emulator account key (public, documented by Microsoft). */
export const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
const BLOB_PREFIX = `/${ACCOUNT}/`
const CONTAINER = 'actions-cache'
/** Signing key of cache-double.mjs's mintRuntimeToken (keep in step with it). */
const TOKEN_HMAC_KEY = 'cache-double-not-a-secret'

/** What the real service answered on every v1 path after the shutdown (HTTP 422). */
export const LEGACY_MESSAGE =
  'This legacy service is shutting down, effective April 15, 2025. Migrate to the new service ASAP. For more information: https://gh.io/gha-cache-sunset'
const LEGACY_BODY = {
  $id: '1',
  innerException: null,
  message: LEGACY_MESSAGE,
  typeName: 'Microsoft.Azure.DevOps.ArtifactCache.WebApi.ArtifactCacheServiceDecommissionedException, Microsoft.Azure.DevOps.ArtifactCache.WebApi',
  typeKey: 'ArtifactCacheServiceDecommissionedException',
  errorCode: 0,
  eventId: 3000
}

export const ALREADY_EXISTS_MESSAGE = 'cache entry with the same key, version, and scope already exists'
const METHODS = ['CreateCacheEntry', 'FinalizeCacheEntryUpload', 'GetCacheEntryDownloadURL']

/** Twirp error code for an HTTP status (Twirp's own mapping; first code wins where several share one). */
const TWIRP_CODE = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'permission_denied',
  404: 'not_found',
  408: 'deadline_exceeded',
  409: 'already_exists',
  412: 'failed_precondition',
  429: 'resource_exhausted',
  500: 'internal',
  501: 'unimplemented',
  503: 'unavailable'
}
/** Azure Storage error code for a faulted blob request. */
const AZURE_CODE = {
  400: ['InvalidInput', 'One of the request inputs is not valid.'],
  403: ['AuthenticationFailed', 'Server failed to authenticate the request.'],
  404: ['BlobNotFound', 'The specified blob does not exist.'],
  408: ['OperationTimedOut', 'The operation could not be completed within the permitted time.'],
  409: ['BlobAlreadyExists', 'The specified blob already exists.'],
  429: ['ServerBusy', 'The server is busy.'],
  500: ['InternalError', 'The server encountered an internal error. Please retry the request.'],
  503: ['ServerBusy', 'The server is currently unable to receive requests. Please retry your request.']
}
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade'
])

// ---------------------------------------------------------------------------------------------
// Helpers

function send(res, status, body, headers = {}) {
  if (res.headersSent || res.destroyed) return
  const data = Buffer.isBuffer(body) ? body : Buffer.from(body ?? '')
  res.writeHead(status, { ...headers, 'Content-Length': String(data.length) })
  res.end(data)
}

function sendJson(res, status, obj, headers = {}) {
  send(res, status, JSON.stringify(obj), { 'Content-Type': 'application/json', ...headers })
}

/** A Twirp error: `{code, msg, meta?}` with the code's HTTP status. */
function twirpError(res, status, code, msg, meta, headers = {}) {
  const body = { code, msg }
  if (meta && Object.keys(meta).length) body.meta = meta
  sendJson(res, status, body, headers)
}

/** Answer only after the request body was read (an early answer + close can RST the answer away). */
function drainThen(req, fn) {
  if (req.complete || req.readableEnded) return fn()
  req.on('end', fn)
  req.on('error', () => {})
  req.resume()
}

function toRegex(r) {
  if (r === undefined || r === null || r === '') return undefined
  return r instanceof RegExp ? r : new RegExp(String(r))
}

/** int64 in proto JSON: a string ("123") from protobuf-ts, a number from Go's encoding/json. */
function toInt64(v) {
  if (typeof v === 'number' && Number.isInteger(v)) return v
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v)
  return undefined
}

/** Spread writes over time at `bytesPerSecond` (slices of ~1/20 s). */
function throttle(bytesPerSecond) {
  let start = 0
  let passed = 0
  const step = Math.max(512, Math.floor(bytesPerSecond / 20))
  return new Transform({
    transform(chunk, _enc, cb) {
      if (!start) start = Date.now()
      let off = 0
      const next = () => {
        if (off >= chunk.length) return cb()
        const slice = chunk.subarray(off, off + step)
        off += slice.length
        passed += slice.length
        const wait = Math.max(0, start + (passed / bytesPerSecond) * 1000 - Date.now())
        setTimeout(() => {
          this.push(slice)
          next()
        }, wait)
      }
      next()
    }
  })
}

function counter(onBytes) {
  return new Transform({
    transform(chunk, _enc, cb) {
      onBytes(chunk.length)
      cb(null, chunk)
    }
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------------------------------------
// Faults

/**
 * @typedef {object} FaultRule
 * @property {number} [status]   HTTP status to answer (api default 500, blob default 503)
 * @property {number} [count]    apply to this many matching requests, then stop (default: no limit)
 * @property {number} [rate]     probability 0..1 per matching request (seeded PRNG; default 1)
 * @property {number} [retryAfter]  seconds, sent as Retry-After
 * @property {string[]} [methods]  api: Twirp method names; blob: ops ('upload', 'download',
 *   'put-block', 'put-block-list', 'put-blob', 'get-properties') or HTTP methods
 * @property {string|RegExp} [keyRegex]  only requests about a matching cache key (api: the key or
 *   any restore key; blob: the key of the entry the blob belongs to)
 * @property {string} [message]  Twirp `msg` / Azure `<Message>` to send
 * @property {boolean} [reset]   destroy the connection instead of answering
 *
 * @typedef {object} Faults  (what configure() / POST /__double/faults / --faults take)
 * @property {FaultRule|FaultRule[]} [api]
 * @property {FaultRule|FaultRule[]} [blob]
 * @property {number} [apiDelayMs]    delay before every API answer
 * @property {number} [blobDelayMs]   delay before every blob request is forwarded
 * @property {number} [blobBytesPerSecond]  throttle blob bodies (both directions)
 * @property {number} [seed]
 */

function normalizeRules(list, defaultStatus) {
  const arr = list === undefined || list === null ? [] : Array.isArray(list) ? list : [list]
  return arr.map((r) => ({
    status: Number(r.status ?? defaultStatus),
    count: r.count === undefined || r.count === null ? Infinity : Number(r.count),
    rate: r.rate === undefined || r.rate === null ? 1 : Math.max(0, Math.min(1, Number(r.rate))),
    retryAfter: r.retryAfter ?? undefined,
    methods: r.methods ? [].concat(r.methods).map(String) : undefined,
    keyRegex: toRegex(r.keyRegex),
    message: r.message ?? undefined,
    reset: Boolean(r.reset),
    used: 0
  }))
}

function normalizeFaults(f = {}) {
  f = f ?? {}
  return {
    api: normalizeRules(f.api, 500),
    blob: normalizeRules(f.blob, 503),
    apiDelayMs: Number(f.apiDelayMs ?? 0),
    blobDelayMs: Number(f.blobDelayMs ?? 0),
    blobBytesPerSecond: Number(f.blobBytesPerSecond ?? 0),
    seed: f.seed ?? 1
  }
}

function publicFaults(cfg) {
  const rule = (r) => ({
    ...r,
    keyRegex: r.keyRegex ? r.keyRegex.source : undefined,
    count: r.count === Infinity ? null : r.count
  })
  return { ...cfg, api: cfg.api.map(rule), blob: cfg.blob.map(rule) }
}

// ---------------------------------------------------------------------------------------------
// Azurite

function azuriteMain() {
  const require = createRequire(import.meta.url)
  const pkgFile = require.resolve('azurite/package.json')
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'))
  return path.join(path.dirname(pkgFile), pkg.bin['azurite-blob'])
}

/** pids of Azurite children still running, killed on process exit whatever happens. */
const livePids = new Set()
let exitHook = false
function trackPid(pid) {
  livePids.add(pid)
  if (!exitHook) {
    exitHook = true
    process.on('exit', () => {
      for (const p of livePids) {
        try {
          process.kill(p, 'SIGKILL')
        } catch {
          /* gone */
        }
      }
    })
  }
}

/**
 * Start `azurite-blob` on 127.0.0.1 (a free port) with its workspace in `location`.
 * @returns {Promise<{ pid: number, port: number, origin: string, stop: () => Promise<void> }>}
 */
async function startAzurite(location, { timeoutMs = 60_000 } = {}) {
  const args = [
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    '0',
    '--location',
    location,
    '--loose',
    '--skipApiVersionCheck',
    '--disableTelemetry', // otherwise it tries to reach the internet
    '--disableProductStyleUrl', // account name always from the path, whatever the Host header
    '--blobKeepAliveTimeout',
    '600', // no idle-close race with the proxy's kept-alive sockets
    '--silent'
  ]
  // Azurite's own bin script, run by a few lines that stop it when this process goes away even
  // by SIGKILL (it is then re-parented): no orphan survives its double. Same pid either way.
  const watchdog = [
    'const parent = process.ppid;',
    "setInterval(() => { if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM'); }, 500).unref();",
    'require(process.argv[1]);'
  ].join('\n')
  const child = spawn(process.execPath, ['-e', watchdog, '--', azuriteMain(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  trackPid(child.pid)
  let output = ''
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  exited.then(() => livePids.delete(child.pid))
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`azurite did not start within ${timeoutMs} ms: ${output}`)), timeoutMs)
    const onData = (d) => {
      output += d
      const m = /listens on https?:\/\/[^:\s]+:(\d+)/.exec(output)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`azurite exited (${code ?? signal}) before listening: ${output}`))
    })
  }).catch(async (err) => {
    try {
      process.kill(child.pid, 'SIGKILL')
    } catch {
      /* gone */
    }
    await exited
    throw err
  })
  // keep draining its output so it never blocks on a full pipe
  child.stdout.resume()
  child.stderr.resume()
  return {
    pid: child.pid,
    port,
    origin: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      try {
        process.kill(child.pid, 'SIGTERM')
      } catch {
        return
      }
      const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])
      if (!done) {
        try {
          process.kill(child.pid, 'SIGKILL')
        } catch {
          /* gone */
        }
        await exited
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The double

/**
 * @param {object} [opts]
 * @param {number} [opts.port=0]
 * @param {string} [opts.host='127.0.0.1']
 * @param {string} [opts.storageDir]  Azurite's workspace (default: a temp dir removed on close)
 * @param {string} [opts.token]  the runtime token to hand out (default: mintRuntimeToken())
 * @param {string} [opts.publicUrl]  origin the signed blob URLs use (default: the Host the API
 *   request came in on, so clients behind a forwarder get URLs they can reach)
 * @param {Faults} [opts.faults]
 * @param {number} [opts.entriesPerMinute=200]  CreateCacheEntry limit per rolling minute (the real
 *   service's per-repository limit since January 2026); beyond it 429 resource_exhausted. 0 = off.
 * @param {number} [opts.sasTtlSeconds=3600]  validity of the signed URLs
 * @param {'decommissioned'|'not-found'} [opts.legacy='decommissioned']  how v1 paths are answered
 * @param {string} [opts.logFile]  append every log entry as a JSON line here
 * @param {(entry: object) => void} [opts.onRequest]
 */
export async function startCacheV2Double({
  port = 0,
  host = '127.0.0.1',
  storageDir,
  token = mintRuntimeToken(),
  publicUrl,
  faults,
  entriesPerMinute = 200,
  sasTtlSeconds = 3600,
  legacy = 'decommissioned',
  logFile,
  onRequest
} = {}) {
  const ownsStorage = !storageDir
  const dir = storageDir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'cache-v2-double-')))
  await fsp.mkdir(path.join(dir, 'azurite'), { recursive: true })

  const azurite = await startAzurite(path.join(dir, 'azurite'))
  const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY)
  let container
  try {
    const service = new BlobServiceClient(`${azurite.origin}/${ACCOUNT}`, credential, { retryOptions: { maxTries: 2 } })
    container = service.getContainerClient(CONTAINER)
    await container.createIfNotExists()
  } catch (err) {
    await azurite.stop()
    throw err
  }
  const blobAgent = new http.Agent({ keepAlive: true, maxSockets: 64 })

  /** @type {Map<number, any>} */
  const store = new Map()
  /** blob name → entry */
  const byBlob = new Map()
  const requests = []
  const createTimes = []
  let nextId = 1
  let finalizeSeq = 0
  let logSeq = 0
  let cfg = normalizeFaults(faults)
  let rand = makePrng(cfg.seed)
  let selfOrigin = ''

  function record(rec) {
    rec.seq = ++logSeq
    requests.push(rec)
    if (logFile) {
      try {
        fs.appendFileSync(logFile, `${JSON.stringify(rec)}\n`)
      } catch {
        /* ignore */
      }
    }
    if (onRequest) {
      try {
        onRequest(rec)
      } catch {
        /* ignore observer errors */
      }
    }
  }

  function configure(newFaults = {}) {
    cfg = normalizeFaults(newFaults)
    rand = makePrng(cfg.seed)
    return api
  }

  /** First rule that applies to this request (and count it), or undefined. */
  function pickFault(rules, names, keys) {
    for (const r of rules) {
      if (r.used >= r.count) continue
      if (r.methods && !names.some((n) => r.methods.includes(n))) continue
      if (r.keyRegex && !keys.some((k) => typeof k === 'string' && r.keyRegex.test(k))) continue
      if (r.rate < 1 && rand() >= r.rate) continue
      r.used += 1
      return r
    }
    return undefined
  }

  // --- tokens and scopes

  function checkToken(header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
    if (!m) return { error: 'missing bearer token' }
    const tok = m[1]
    const parts = tok.split('.')
    if (parts.length !== 3) return { error: 'token is not a JWT' }
    const sig = crypto.createHmac('sha256', TOKEN_HMAC_KEY).update(`${parts[0]}.${parts[1]}`).digest('base64url')
    if (sig !== parts[2] && tok !== token) return { error: 'token signature is invalid' }
    let payload
    try {
      payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'))
    } catch {
      return { error: 'token payload is not JSON' }
    }
    const now = Math.floor(Date.now() / 1000)
    if (typeof payload.exp === 'number' && payload.exp < now) return { error: 'token is expired' }
    if (typeof payload.nbf === 'number' && payload.nbf > now + 300) return { error: 'token is not valid yet' }
    const scopes = decodeTokenScopes(tok)
    if (!scopes) return { error: 'token has no access control claim' }
    return {
      readable: scopes.filter((s) => s.Permission & 1).map((s) => s.Scope),
      writable: scopes.find((s) => s.Permission & 2)?.Scope ?? null
    }
  }

  // --- signed URLs

  function blobUrl(origin, blobName, permissions) {
    const now = Date.now()
    const sas = generateBlobSASQueryParameters(
      {
        containerName: CONTAINER,
        blobName,
        permissions: BlobSASPermissions.parse(permissions),
        startsOn: new Date(now - 5 * 60 * 1000),
        expiresOn: new Date(now + sasTtlSeconds * 1000),
        protocol: SASProtocol.HttpsAndHttp
      },
      credential
    ).toString()
    return `${origin}/${ACCOUNT}/${CONTAINER}/${blobName}?${sas}`
  }

  function originFor(req) {
    if (publicUrl) return publicUrl.replace(/\/+$/, '')
    return req.headers.host ? `http://${req.headers.host}` : selfOrigin
  }

  function publicEntry(e) {
    return {
      id: e.id,
      key: e.key,
      version: e.version,
      scope: e.scope,
      finalized: e.finalized,
      sizeBytes: e.sizeBytes,
      blobSize: e.blobSize,
      blobName: e.blobName,
      createdAt: e.createdAt,
      finalizedAt: e.finalizedAt,
      lastAccessedAt: e.lastAccessedAt
    }
  }

  /** The real service's order: per readable scope, exact key, prefix of key, then each restore key as prefix. */
  function lookup(key, restoreKeys, version, readable) {
    const usable = [...store.values()].filter((e) => e.finalized && e.version === version)
    const newest = (list) => list.sort((a, b) => b.seq - a.seq)[0]
    for (const scope of readable) {
      const inScope = usable.filter((e) => e.scope === scope)
      const exact = newest(inScope.filter((e) => e.key === key))
      if (exact) return { entry: exact, matchedBy: 'exact', scope }
      const prefix = newest(inScope.filter((e) => e.key.startsWith(key)))
      if (prefix) return { entry: prefix, matchedBy: 'prefix', scope }
      for (const rk of restoreKeys) {
        if (!rk) continue
        const hit = newest(inScope.filter((e) => e.key.startsWith(rk)))
        if (hit) return { entry: hit, matchedBy: hit.key === rk ? 'restore-key-exact' : 'restore-key-prefix', restoreKey: rk, scope }
      }
    }
    return null
  }

  // --- API

  async function handleTwirp(req, res, url, rec) {
    rec.kind = 'api'
    const pathname = url.pathname
    const invalidRoute = { twirp_invalid_route: `${req.method} ${pathname}` }
    if (req.method !== 'POST') {
      rec.code = 'bad_route'
      return drainThen(req, () => twirpError(res, 404, 'bad_route', `unsupported method ${JSON.stringify(req.method)} (only POST is allowed)`, invalidRoute))
    }
    const rest = pathname.slice(TWIRP_PREFIX.length)
    const slash = rest.lastIndexOf('/')
    const service = slash >= 0 ? rest.slice(0, slash) : rest
    const method = slash >= 0 ? rest.slice(slash + 1) : ''
    rec.method = method || undefined
    if (service !== SERVICE || !METHODS.includes(method)) {
      rec.code = 'bad_route'
      return drainThen(req, () => twirpError(res, 404, 'bad_route', `no handler for path ${JSON.stringify(pathname)}`, invalidRoute))
    }
    const contentType = String(req.headers['content-type'] ?? '')
      .split(';')[0]
      .trim()
      .toLowerCase()
    if (contentType === 'application/protobuf') {
      rec.code = 'unimplemented'
      return drainThen(req, () => twirpError(res, 501, 'unimplemented', 'cache-v2-double speaks the JSON encoding only'))
    }
    if (contentType !== 'application/json') {
      rec.code = 'bad_route'
      return drainThen(req, () =>
        twirpError(res, 404, 'bad_route', `unexpected Content-Type: ${JSON.stringify(req.headers['content-type'] ?? '')}`, invalidRoute)
      )
    }
    const raw = await readBody(req)
    let body
    try {
      body = raw.length ? JSON.parse(raw.toString('utf8')) : {}
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object')
    } catch (err) {
      rec.code = 'malformed'
      return twirpError(res, 400, 'malformed', 'the json request could not be decoded', { cause: String(err.message ?? err) })
    }
    const key = typeof body.key === 'string' ? body.key : ''
    const version = typeof body.version === 'string' ? body.version : ''
    const restoreKeys = Array.isArray(body.restore_keys ?? body.restoreKeys) ? (body.restore_keys ?? body.restoreKeys).filter((k) => typeof k === 'string') : []
    rec.key = key
    rec.version = version
    if (method === 'GetCacheEntryDownloadURL') rec.restoreKeys = restoreKeys

    if (cfg.apiDelayMs > 0) await sleep(cfg.apiDelayMs)
    const fault = pickFault(cfg.api, [method], [key, ...restoreKeys])
    if (fault) {
      rec.fault = fault.reset ? 'reset' : fault.status
      if (fault.reset) return res.destroy()
      const headers = {}
      if (fault.retryAfter !== undefined) headers['Retry-After'] = String(fault.retryAfter)
      rec.retryAfter = fault.retryAfter
      const code = TWIRP_CODE[fault.status]
      if (!code) {
        // 502/504 come from the front end, not from Twirp: an HTML page
        return send(res, fault.status, `<html><body><h1>${fault.status} ${http.STATUS_CODES[fault.status] ?? ''}</h1></body></html>\n`, {
          'Content-Type': 'text/html',
          ...headers
        })
      }
      rec.code = code
      return twirpError(res, fault.status, code, fault.message ?? `cache-v2-double: injected ${fault.status} (${code})`, undefined, headers)
    }

    const caller = checkToken(req.headers.authorization)
    if (caller.error) {
      rec.code = 'unauthenticated'
      rec.message = caller.error
      return twirpError(res, 401, 'unauthenticated', caller.error, undefined, { 'WWW-Authenticate': 'Bearer' })
    }
    rec.scopes = caller.readable

    if (method === 'GetCacheEntryDownloadURL') return getDownloadUrl(req, res, rec, caller, key, restoreKeys, version)
    if (method === 'CreateCacheEntry') return createEntry(req, res, rec, caller, key, version)
    return finalizeEntry(res, rec, caller, key, version, toInt64(body.size_bytes ?? body.sizeBytes))
  }

  function validateKeyVersion(res, rec, key, version) {
    let msg
    if (!key) msg = 'key is required'
    else if (key.length > 512) msg = `key is longer than 512 characters`
    else if (!version) msg = 'version is required'
    if (!msg) return true
    rec.code = 'invalid_argument'
    twirpError(res, 400, 'invalid_argument', msg)
    return false
  }

  function getDownloadUrl(req, res, rec, caller, key, restoreKeys, version) {
    if (!validateKeyVersion(res, rec, key, version)) return
    if (caller.readable.length === 0) {
      rec.code = 'permission_denied'
      return twirpError(res, 403, 'permission_denied', 'cache read denied: the token has no readable cache scope')
    }
    const hit = lookup(key, restoreKeys, version, caller.readable)
    if (!hit) {
      rec.hit = false
      rec.ok = false
      return sendJson(res, 200, { ok: false, signed_download_url: '', matched_key: '' })
    }
    const e = hit.entry
    e.lastAccessedAt = new Date().toISOString()
    Object.assign(rec, { hit: true, ok: true, matchedKey: e.key, matchedBy: hit.matchedBy, entryId: e.id, scope: e.scope })
    return sendJson(res, 200, { ok: true, signed_download_url: blobUrl(originFor(req), e.blobName, 'r'), matched_key: e.key })
  }

  function createEntry(req, res, rec, caller, key, version) {
    if (!validateKeyVersion(res, rec, key, version)) return
    if (caller.writable === null) {
      rec.ok = false
      rec.message = 'cache write denied'
      return sendJson(res, 200, {
        ok: false,
        signed_upload_url: '',
        message: 'cache write denied: the token has no writable cache scope'
      })
    }
    const scope = caller.writable
    rec.scope = scope
    const clash = [...store.values()].find((e) => e.key === key && e.version === version && e.scope === scope)
    if (clash) {
      rec.code = 'already_exists'
      rec.entryId = clash.id
      return twirpError(res, 409, 'already_exists', ALREADY_EXISTS_MESSAGE)
    }
    const now = Date.now()
    while (createTimes.length && createTimes[0] <= now - 60_000) createTimes.shift()
    if (entriesPerMinute > 0 && createTimes.length >= entriesPerMinute) {
      const retryAfter = Math.max(1, Math.ceil((createTimes[0] + 60_000 - now) / 1000))
      rec.code = 'resource_exhausted'
      rec.retryAfter = retryAfter
      return twirpError(res, 429, 'resource_exhausted', `cache entry creation rate limit exceeded: at most ${entriesPerMinute} entries per minute`, undefined, {
        'Retry-After': String(retryAfter)
      })
    }
    createTimes.push(now)
    const id = nextId++
    const blobName = `entries/${id}`
    const entry = {
      id,
      key,
      version,
      scope,
      blobName,
      finalized: false,
      sizeBytes: undefined,
      blobSize: undefined,
      createdAt: new Date(now).toISOString(),
      finalizedAt: undefined,
      lastAccessedAt: undefined,
      seq: 0
    }
    store.set(id, entry)
    byBlob.set(blobName, entry)
    Object.assign(rec, { ok: true, entryId: id })
    return sendJson(res, 200, { ok: true, signed_upload_url: blobUrl(originFor(req), blobName, 'cw'), message: '' })
  }

  async function finalizeEntry(res, rec, caller, key, version, sizeBytes) {
    if (!validateKeyVersion(res, rec, key, version)) return
    rec.sizeBytes = sizeBytes
    if (sizeBytes === undefined || sizeBytes < 0) {
      rec.code = 'invalid_argument'
      return twirpError(res, 400, 'invalid_argument', 'size_bytes is required')
    }
    const scope = caller.writable
    const entry = [...store.values()].find((e) => e.key === key && e.version === version && e.scope === scope)
    if (!entry) {
      rec.code = 'not_found'
      return twirpError(res, 404, 'not_found', 'cache entry not found')
    }
    rec.entryId = entry.id
    rec.scope = entry.scope
    if (!entry.finalized) {
      let props
      try {
        props = await container.getBlobClient(entry.blobName).getProperties()
      } catch (err) {
        if (err?.statusCode !== 404) throw err
      }
      if (!props) {
        rec.code = 'not_found'
        rec.message = 'blob was never committed'
        return twirpError(res, 404, 'not_found', 'cache entry not found')
      }
      entry.blobSize = props.contentLength
      entry.sizeBytes = sizeBytes
      entry.finalized = true
      entry.finalizedAt = new Date().toISOString()
      entry.seq = ++finalizeSeq
    }
    rec.blobSize = entry.blobSize
    if (entry.blobSize !== sizeBytes) rec.sizeMismatch = true
    rec.ok = true
    return sendJson(res, 200, { ok: true, entry_id: String(entry.id), message: '' })
  }

  // --- blob proxy

  function blobOp(method, comp) {
    if (method === 'PUT') return comp === 'block' ? 'put-block' : comp === 'blocklist' ? 'put-block-list' : comp ? `put-${comp}` : 'put-blob'
    if (method === 'GET') return comp ? `get-${comp}` : 'download'
    if (method === 'HEAD') return 'get-properties'
    return `${method.toLowerCase()}${comp ? `-${comp}` : ''}`
  }

  async function handleBlob(req, res, url, rec) {
    rec.kind = 'blob'
    const comp = url.searchParams.get('comp') ?? undefined
    const op = blobOp(req.method ?? 'GET', comp)
    rec.op = op
    const prefix = `/${ACCOUNT}/${CONTAINER}/`
    const blobName = url.pathname.startsWith(prefix) ? decodeURIComponent(url.pathname.slice(prefix.length)) : ''
    const entry = byBlob.get(blobName)
    if (entry) Object.assign(rec, { entryId: entry.id, key: entry.key, version: entry.version })
    const range = req.headers['x-ms-range'] ?? req.headers.range
    if (range) rec.range = String(range)

    const direction = req.method === 'PUT' || req.method === 'POST' ? 'upload' : 'download'
    // rules may name the op, the direction or the HTTP method
    const chosen = pickFault(cfg.blob, [op, direction, String(req.method)], entry ? [entry.key] : [])
    if (cfg.blobDelayMs > 0) await sleep(cfg.blobDelayMs)
    if (chosen) {
      rec.fault = chosen.reset ? 'reset' : chosen.status
      if (chosen.reset) return res.destroy()
      const [code, message] = AZURE_CODE[chosen.status] ?? ['InternalError', `status ${chosen.status}`]
      const requestId = crypto.randomUUID()
      const xml = `\uFEFF<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${chosen.message ?? message}\nRequestId:${requestId}\nTime:${new Date().toISOString()}</Message></Error>`
      const headers = {
        'Content-Type': 'application/xml',
        'x-ms-error-code': code,
        'x-ms-request-id': requestId,
        'x-ms-version': '2025-01-05',
        Server: 'cache-v2-double'
      }
      if (chosen.retryAfter !== undefined) headers['Retry-After'] = String(chosen.retryAfter)
      rec.retryAfter = chosen.retryAfter
      return drainThen(req, () => send(res, chosen.status, req.method === 'HEAD' ? '' : xml, headers))
    }
    return forwardBlob(req, res, rec)
  }

  function forwardBlob(req, res, rec) {
    const uploading = req.method === 'PUT' || req.method === 'POST'
    rec.bytes = 0 // request body bytes for uploads, answer body bytes otherwise
    return new Promise((resolve) => {
      const headers = {}
      for (const [k, v] of Object.entries(req.headers)) {
        if (!HOP_BY_HOP.has(k) && k !== 'host') headers[k] = v
      }
      headers.host = `127.0.0.1:${azurite.port}`
      const bps = cfg.blobBytesPerSecond
      const up = http.request({ host: '127.0.0.1', port: azurite.port, method: req.method, path: req.url, headers, agent: blobAgent })
      const fail = (err) => {
        rec.error = String(err?.message ?? err)
        if (!res.headersSent) {
          send(res, 502, `cache-v2-double: azurite: ${rec.error}`, { 'Content-Type': 'text/plain', Connection: 'close' })
        } else res.destroy()
        resolve()
      }
      up.on('error', fail)
      up.on('response', (upRes) => {
        const out = {}
        for (const [k, v] of Object.entries(upRes.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v
        res.writeHead(upRes.statusCode ?? 502, out)
        const stages = [upRes]
        if (!uploading) stages.push(counter((n) => (rec.bytes += n)))
        if (bps > 0) stages.push(throttle(bps))
        pipeline(...stages, res)
          .catch(() => res.destroy())
          .finally(resolve)
      })
      const inStages = [req]
      if (uploading) inStages.push(counter((n) => (rec.bytes += n)))
      if (bps > 0) inStages.push(throttle(bps))
      pipeline(...inStages, up).catch((err) => {
        up.destroy()
        fail(err)
      })
    })
  }

  // --- legacy v1

  function handleLegacy(req, res, rec) {
    rec.kind = 'legacy'
    drainThen(req, () => {
      if (legacy === 'not-found') {
        return send(res, 404, '404 page not found\n', { 'Content-Type': 'text/plain; charset=utf-8' })
      }
      return sendJson(res, 422, LEGACY_BODY, { 'Content-Type': 'application/json; charset=utf-8' })
    })
  }

  // --- log summary

  function summarize() {
    const apiRecs = requests.filter((r) => r.kind === 'api')
    const lookups = apiRecs
      .filter((r) => r.method === 'GetCacheEntryDownloadURL')
      .map((r) => ({
        key: r.key,
        restoreKeys: r.restoreKeys ?? [],
        version: r.version,
        status: r.status,
        code: r.code,
        hit: r.hit === true,
        matchedKey: r.matchedKey,
        matchedBy: r.matchedBy,
        entryId: r.entryId,
        fault: r.fault
      }))
    const creates = apiRecs
      .filter((r) => r.method === 'CreateCacheEntry')
      .map((r) => ({ key: r.key, version: r.version, status: r.status, code: r.code, ok: r.ok === true, entryId: r.entryId, scope: r.scope, fault: r.fault }))
    const finalizes = apiRecs
      .filter((r) => r.method === 'FinalizeCacheEntryUpload')
      .map((r) => ({
        key: r.key,
        version: r.version,
        status: r.status,
        code: r.code,
        ok: r.ok === true,
        entryId: r.entryId,
        sizeBytes: r.sizeBytes,
        blobSize: r.blobSize,
        fault: r.fault
      }))
    const blobs = requests.filter((r) => r.kind === 'blob')
    const uploads = blobs.filter((r) => r.op?.startsWith('put-'))
    const downloads = blobs.filter((r) => r.op === 'download')
    const uniq = (arr) => [...new Set(arr)]
    return {
      lookups,
      creates,
      finalizes,
      uploads: uploads.map((r) => ({ op: r.op, key: r.key, entryId: r.entryId, status: r.status, bytes: r.bytes, fault: r.fault })),
      downloads: downloads.map((r) => ({ key: r.key, entryId: r.entryId, status: r.status, bytes: r.bytes, range: r.range, fault: r.fault })),
      keysRead: uniq(lookups.flatMap((l) => [l.key, ...l.restoreKeys])),
      keysHit: uniq(lookups.filter((l) => l.hit).map((l) => l.matchedKey)),
      keysWritten: uniq(creates.filter((c) => c.ok).map((c) => c.key)),
      keysCommitted: uniq(finalizes.filter((f) => f.ok).map((f) => f.key)),
      counts: {
        requests: requests.length,
        api: apiRecs.length,
        lookups: lookups.length,
        hits: lookups.filter((l) => l.hit).length,
        misses: lookups.filter((l) => l.status === 200 && !l.hit).length,
        creates: creates.filter((c) => c.ok).length,
        conflicts: creates.filter((c) => c.code === 'already_exists').length,
        finalizes: finalizes.filter((f) => f.ok).length,
        blobRequests: blobs.length,
        uploadedBytes: uploads.filter((r) => r.status >= 200 && r.status < 300).reduce((n, r) => n + (r.bytes ?? 0), 0),
        downloadedBytes: downloads.reduce((n, r) => n + (r.bytes ?? 0), 0),
        faults: requests.filter((r) => r.fault !== undefined).length,
        unauthenticated: requests.filter((r) => r.code === 'unauthenticated').length,
        rateLimited: requests.filter((r) => r.status === 429).length,
        serverErrors: requests.filter((r) => r.status >= 500).length,
        badRoutes: requests.filter((r) => r.code === 'bad_route').length,
        legacy: requests.filter((r) => r.kind === 'legacy').length
      }
    }
  }

  // --- admin

  async function handleControl(req, res, url) {
    const what = url.pathname.slice(CONTROL_PREFIX.length)
    if (req.method === 'GET') {
      if (what === 'requests') return sendJson(res, 200, requests)
      if (what === 'summary') return sendJson(res, 200, summarize())
      if (what === 'entries') return sendJson(res, 200, api.entries())
      if (what === 'faults') return sendJson(res, 200, publicFaults(cfg))
      if (what === 'health') return sendJson(res, 200, { ok: true, azuritePid: azurite.pid })
    }
    if (req.method === 'POST') {
      const raw = await readBody(req)
      let body = {}
      try {
        body = raw.length ? JSON.parse(raw.toString('utf8')) : {}
      } catch {
        return sendJson(res, 400, { message: 'invalid JSON' })
      }
      if (what === 'faults') {
        configure(body)
        return sendJson(res, 200, publicFaults(cfg))
      }
      if (what === 'clear') {
        api.clearLog()
        return sendJson(res, 200, { ok: true })
      }
      if (what === 'reset') {
        await api.reset()
        return sendJson(res, 200, { ok: true })
      }
    }
    return sendJson(res, 404, { message: `unknown control endpoint ${req.method} ${url.pathname}` })
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://double.invalid')
    if (url.pathname.startsWith(CONTROL_PREFIX)) {
      try {
        return await handleControl(req, res, url)
      } catch (err) {
        return sendJson(res, 500, { message: String(err?.message ?? err) })
      }
    }
    const rec = { t: Date.now(), kind: 'other', httpMethod: req.method, path: url.pathname, status: 0 }
    const ua = req.headers['user-agent']
    if (ua) rec.ua = String(ua)
    // who asked, on which connection (its n-th request), and when the answer's head went out:
    // enough to line a request up with a packet capture and to tell waiting from transferring
    const sock = req.socket
    sock.brokkrRequests = (sock.brokkrRequests ?? 0) + 1
    rec.peer = `${sock.remoteAddress}:${sock.remotePort}`
    rec.onConnection = sock.brokkrRequests
    const writeHead = res.writeHead
    res.writeHead = function (...args) {
      rec.headMs ??= Date.now() - rec.t
      return writeHead.apply(this, args)
    }
    let logged = false
    const done = () => {
      if (logged) return
      logged = true
      rec.status = res.headersSent ? res.statusCode : 0
      rec.ms = Date.now() - rec.t
      if (!res.writableFinished) rec.aborted = true
      record(rec)
    }
    res.on('finish', done)
    res.on('close', done)
    try {
      if (url.pathname.startsWith(TWIRP_PREFIX)) return await handleTwirp(req, res, url, rec)
      if (url.pathname.startsWith(BLOB_PREFIX)) return await handleBlob(req, res, url, rec)
      if (url.pathname.startsWith(LEGACY_PREFIX) || url.pathname === LEGACY_PREFIX.slice(0, -1)) return handleLegacy(req, res, rec)
      return drainThen(req, () => send(res, 404, '404 page not found\n', { 'Content-Type': 'text/plain; charset=utf-8' }))
    } catch (err) {
      rec.error = String(err?.message ?? err)
      if (!res.headersSent && !res.destroyed) {
        if (rec.kind === 'api') twirpError(res, err?.status ?? 500, 'internal', `cache-v2-double: ${rec.error}`)
        else send(res, 500, `cache-v2-double: ${rec.error}`)
      } else res.destroy()
    }
  })
  // Longer than the idle timeout of Go's HTTP client (90 s), which BuildKit's cache client uses:
  // a server that drops an idle keep-alive connection first races the client's next request on
  // it, and Go does not retry a POST that meets EOF there (BuildKit then fails the cache lookup).
  server.keepAliveTimeout = 120_000
  server.requestTimeout = 0 // big uploads

  let listening
  try {
    listening = await listen(server, { port, host })
  } catch (err) {
    await azurite.stop()
    if (ownsStorage) await fsp.rm(dir, { recursive: true, force: true })
    throw err
  }
  selfOrigin = listening.origin
  const baseUrl = `${listening.origin}/`
  let closed = false

  const api = {
    /** ACTIONS_RESULTS_URL (trailing slash, like the runner's). */
    url: baseUrl,
    origin: listening.origin,
    port: listening.port,
    token,
    storageDir: dir,
    azurite: { pid: azurite.pid, port: azurite.port, url: azurite.origin },
    requests,
    /** What a v2 client needs (no ACTIONS_CACHE_URL, like today's runners). */
    env() {
      return { ACTIONS_RESULTS_URL: baseUrl, ACTIONS_RUNTIME_TOKEN: token, ACTIONS_CACHE_SERVICE_V2: 'True' }
    },
    /** What a v1-only client would be given: it is refused like the real service refuses it. */
    legacyEnv() {
      return { ACTIONS_CACHE_URL: baseUrl, ACTIONS_RUNTIME_TOKEN: token }
    },
    /**
     * A buildx `--cache-from`/`--cache-to` value with the v2 attributes spelled out (buildx >= 0.21
     * derives the same from env()), e.g. ghaCache({ scope: 'x', mode: 'max' }).
     * @param {Record<string, string>} [attrs]
     */
    ghaCache(attrs = {}) {
      return ['type=gha', `url_v2=${baseUrl}`, 'version=2', `token=${token}`, ...Object.entries(attrs).map(([k, v]) => `${k}=${v}`)].join(',')
    },
    /** Replace all fault knobs (see the Faults typedef); `{}` turns every fault off. */
    configure,
    faults() {
      return publicFaults(cfg)
    },
    entries() {
      return [...store.values()].sort((a, b) => a.id - b.id).map(publicEntry)
    },
    /** The bytes of an entry (newest finalized one for a key), or undefined. */
    async readEntry(idOrKey) {
      const e =
        typeof idOrKey === 'number' ? store.get(idOrKey) : [...store.values()].filter((x) => x.key === idOrKey && x.finalized).sort((a, b) => b.seq - a.seq)[0]
      if (!e || !e.finalized) return undefined
      return container.getBlobClient(e.blobName).downloadToBuffer()
    },
    clearLog() {
      requests.length = 0
    },
    summarize,
    /** Forget every entry (and its blob) and the log. */
    async reset() {
      for (const e of store.values()) await container.getBlobClient(e.blobName).deleteIfExists()
      store.clear()
      byBlob.clear()
      createTimes.length = 0
      requests.length = 0
    },
    mintToken(opts) {
      return mintRuntimeToken(opts)
    },
    async close() {
      if (closed) return
      closed = true
      await listening.close()
      blobAgent.destroy()
      await azurite.stop()
      if (ownsStorage) await fsp.rm(dir, { recursive: true, force: true })
    }
  }
  return api
}

// ---------------------------------------------------------------------------------------------
// CLI

function jsonArg(name, value) {
  if (value === undefined) return undefined
  try {
    return JSON.parse(value)
  } catch {
    throw new Error(`--${name} is not JSON: ${value}`)
  }
}

runServiceCli(import.meta.url, {
  usage:
    '[--port N] [--host H] [--state-file F] [--storage-dir D] [--scope refs/heads/main] [--public-url URL] ' +
    '[--faults JSON] [--api-fault JSON] [--blob-fault JSON] [--api-delay-ms N] [--blob-delay-ms N] ' +
    '[--blob-bytes-per-second N] [--entries-per-minute N] [--sas-ttl-seconds N] [--legacy decommissioned|not-found] ' +
    '[--log-file F] [--quiet]',
  options: {
    storageDir: 'string',
    scope: 'string',
    publicUrl: 'string',
    faults: 'string',
    apiFault: 'string',
    blobFault: 'string',
    apiDelayMs: 'number',
    blobDelayMs: 'number',
    blobBytesPerSecond: 'number',
    entriesPerMinute: 'number',
    sasTtlSeconds: 'number',
    legacy: 'string',
    logFile: 'string'
  },
  async start(args, log) {
    const faults = { ...(jsonArg('faults', args.faults) ?? {}) }
    if (args.apiFault !== undefined) faults.api = jsonArg('api-fault', args.apiFault)
    if (args.blobFault !== undefined) faults.blob = jsonArg('blob-fault', args.blobFault)
    if (args.apiDelayMs !== undefined) faults.apiDelayMs = args.apiDelayMs
    if (args.blobDelayMs !== undefined) faults.blobDelayMs = args.blobDelayMs
    if (args.blobBytesPerSecond !== undefined) faults.blobBytesPerSecond = args.blobBytesPerSecond
    if (args.legacy !== undefined && !['decommissioned', 'not-found'].includes(args.legacy)) {
      throw new Error(`--legacy must be decommissioned or not-found, not ${args.legacy}`)
    }
    const double = await startCacheV2Double({
      port: args.port,
      host: args.host,
      storageDir: args.storageDir,
      token: mintRuntimeToken(args.scope ? { scope: args.scope } : {}),
      publicUrl: args.publicUrl,
      faults,
      entriesPerMinute: args.entriesPerMinute,
      sasTtlSeconds: args.sasTtlSeconds,
      legacy: args.legacy,
      logFile: args.logFile,
      onRequest: log
    })
    return {
      state: {
        url: double.url,
        token: double.token,
        pid: process.pid,
        azuritePid: double.azurite.pid,
        azuriteUrl: double.azurite.url,
        storageDir: double.storageDir,
        controlUrl: `${double.origin}${CONTROL_PREFIX}`,
        logFile: args.logFile,
        env: double.env()
      },
      close: () => double.close()
    }
  }
})
