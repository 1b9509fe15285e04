// Test double of the GitHub Actions cache service v2 (what runners offer since v1 was switched off
// on 2025-04-15): Twirp JSON at `${ACTIONS_RESULTS_URL}twirp/github.actions.results.api.v1.CacheService/*`,
// archives in Azure Blob Storage behind signed (SAS) URLs. One port serves it all, so one TCP
// forwarder lets a container reach it:
//   POST /twirp/.../CreateCacheEntry | FinalizeCacheEntryUpload | GetCacheEntryDownloadURL;
//        any other route → Twirp `bad_route` (404);
//   *    /_apis/artifactcache/... → 422 ArtifactCacheServiceDecommissionedException, what the real
//        service answers a v1 client since the shutdown ("This legacy service is shutting down ...");
//   *    /devstoreaccount1/...    → a real Azurite (a child process) behind a proxy that logs every
//        blob request and can fault it; the signed URLs point here.
//
// Written against both v2 clients:
//   - @actions/cache 6.x: snake_case JSON (`restore_keys`, `size_bytes` as an int64 *string*); reads
//     `ok`/`signed_upload_url`/`message`, `ok`/`entry_id`, `ok`/`signed_download_url`/`matched_key`,
//     Twirp errors as `msg`; knows the denials `ok:false` + "cache write denied: ..." and 403 +
//     "cache read denied: ..."; uploads with the Azure SDK (Put Blob up to 128 MiB, else blocks),
//     downloads with plain GETs.
//   - go-actions-cache `cache_v2.go` (BuildKit `type=gha,version=2`): `restore_keys` holds the primary
//     key too, `size_bytes` a JSON number; `ok:false` is a miss; `{"code":"already_exists"}` becomes
//     os.ErrExist (SaveMutable relies on it); 429 is retried; blocks + block list up, `x-ms-range: bytes=N-` down.
// Tokens, scopes and the lookup order are those of cache-core.mjs; CreateCacheEntry is limited to
// `entriesPerMinute` entries a rolling minute (default 200, the real per-repository limit since
// January 2026), then 429 with Retry-After, as GitHub answers.
//
// Faults (`faults` option, configure()): `{api, blob}`, each a rule or a list of rules
// `{status, methods, keyPrefix}` (api default 500, blob default 503; `methods`: Twirp method names, or
// blob ops ('upload', 'download', 'put-blob', 'put-block', 'put-block-list', 'get-properties') or HTTP
// methods; without it every request; `keyPrefix`, blob rules only: entries whose key starts so). A faulted request is answered at once, never forwarded.
// Requests are logged in `requests` (`kind` api|blob|legacy, Twirp `method` or blob `op`, `key`, ...).
// Azurite runs under a watchdog that stops it when its parent dies, even by SIGKILL.

import crypto from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { BlobServiceClient, BlobSASPermissions, StorageSharedKeyCredential, generateBlobSASQueryParameters } from '@azure/storage-blob'
import { callerOf, drainThen, makeStore, mintRuntimeToken, originOf, readJson, send, sendArtifactCacheError, sendJson, serveDouble } from './cache-core.mjs'

export const SERVICE = 'github.actions.results.api.v1.CacheService'
export const ALREADY_EXISTS_MESSAGE = 'cache entry with the same key, version, and scope already exists'
export const LEGACY_MESSAGE =
  'This legacy service is shutting down, effective April 15, 2025. Migrate to the new service ASAP. For more information: https://gh.io/gha-cache-sunset'
export const ENTRIES_PER_MINUTE = 200
const ACCOUNT = 'devstoreaccount1'
/** The well-known Azurite / storage emulator account key (public, documented by Microsoft). */
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
const CONTAINER = 'actions-cache'
const BLOB_PREFIX = `/${ACCOUNT}/${CONTAINER}/entries/`
const METHODS = ['CreateCacheEntry', 'FinalizeCacheEntryUpload', 'GetCacheEntryDownloadURL']
const TWIRP_CODE = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'permission_denied',
  404: 'not_found',
  409: 'already_exists',
  429: 'resource_exhausted',
  503: 'unavailable'
}
const AZURE_ERROR = {
  429: ['ServerBusy', 'The server is busy.'],
  503: ['ServerBusy', 'The server is currently unable to receive requests. Please retry your request.']
}
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'])
const withoutHopByHop = (headers) => Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP_BY_HOP.has(k)))

const rules = (list, status) =>
  [].concat(list ?? []).map((r) => ({ status: Number(r.status ?? status), methods: r.methods && [].concat(r.methods), keyPrefix: r.keyPrefix }))
const faultsFrom = (f = {}) => ({ api: rules(f.api, 500), blob: rules(f.blob, 503) })

function twirpError(res, rec, status, code, msg, headers) {
  rec.code = code
  sendJson(res, status, { code, msg }, headers)
}

/** int64 in proto JSON: a string ("123") from @actions/cache, a number from Go. */
const toInt64 = (v) => (Number.isInteger(v) ? v : /^\d+$/.test(String(v)) ? Number(v) : undefined)

/** pids of running Azurite children: killed when this process exits, whatever the way. */
const azuritePids = new Set()
process.on('exit', () => {
  for (const pid of azuritePids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
})

/** `azurite-blob` on 127.0.0.1 (a free port) with its workspace in `location`. */
async function startAzurite(location) {
  const pkgFile = createRequire(import.meta.url).resolve('azurite/package.json')
  const main = path.join(path.dirname(pkgFile), JSON.parse(fs.readFileSync(pkgFile, 'utf8')).bin['azurite-blob'])
  // --disableTelemetry: it would try to reach the internet; --disableProductStyleUrl: the account
  // from the path whatever the Host; a long keep-alive: no idle-close race with the proxy's sockets
  const args = ['--blobHost', '127.0.0.1', '--blobPort', '0', '--location', location, '--loose', '--skipApiVersionCheck']
  args.push('--disableTelemetry', '--disableProductStyleUrl', '--blobKeepAliveTimeout', '600', '--silent')
  // run by a few lines that stop it once its parent is gone (it is then re-parented): no orphan
  const watchdog =
    "const p = process.ppid; setInterval(() => process.ppid !== p && process.kill(process.pid, 'SIGTERM'), 500).unref(); require(process.argv[1])"
  const child = spawn(process.execPath, ['-e', watchdog, '--', main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  azuritePids.add(child.pid)
  const exited = new Promise((resolve) => child.once('exit', resolve)).then(() => azuritePids.delete(child.pid))
  let output = ''
  const port = await new Promise((resolve, reject) => {
    const onData = (d) => {
      output += d
      const m = /listens on https?:\/\/[^:\s]+:(\d+)/.exec(output)
      if (m) resolve(Number(m[1]))
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    exited.then(() => reject(new Error(`azurite exited before listening: ${output}`)))
    setTimeout(() => reject(new Error(`azurite did not start within 60 s: ${output}`)), 60_000).unref()
  }).catch(async (err) => {
    child.kill('SIGKILL')
    await exited
    throw err
  })
  return {
    pid: child.pid,
    port,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
  }
}

/**
 * @param {{token?: string, host?: string, faults?: object, logFile?: string, entriesPerMinute?: number}} [o]
 *   host: where to listen (default 127.0.0.1); logFile: append every request record as a JSON line;
 *   entriesPerMinute: the CreateCacheEntry rate limit (default GitHub's 200)
 */
export async function startCacheV2Double({ token = mintRuntimeToken(), host, faults, logFile, entriesPerMinute = ENTRIES_PER_MINUTE } = {}) {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cache-v2-double-'))
  const azurite = await startAzurite(dir)
  const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY)
  const container = new BlobServiceClient(`http://127.0.0.1:${azurite.port}/${ACCOUNT}`, credential).getContainerClient(CONTAINER)
  await container.createIfNotExists().catch(async (err) => {
    await azurite.stop()
    throw err
  })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
  const store = makeStore()
  const createTimes = []
  let cfg = faultsFrom(faults)
  const pickFault = (list, names, key) =>
    list.find((r) => (!r.methods || names.some((n) => r.methods.includes(n))) && (!r.keyPrefix || String(key ?? '').startsWith(r.keyPrefix)))

  function sas(req, blobName, permissions) {
    const now = Date.now()
    const query = generateBlobSASQueryParameters(
      {
        containerName: CONTAINER,
        blobName,
        permissions: BlobSASPermissions.parse(permissions),
        startsOn: new Date(now - 300_000),
        expiresOn: new Date(now + 3600_000)
      },
      credential
    )
    return `${originOf(req, service.listening.origin)}/${ACCOUNT}/${CONTAINER}/${blobName}?${query}`
  }

  async function twirp(req, res, url, rec) {
    rec.kind = 'api'
    const method = url.pathname.slice(`/twirp/${SERVICE}/`.length)
    const contentType = String(req.headers['content-type'] ?? '')
      .split(';')[0]
      .trim()
    if (req.method !== 'POST' || !url.pathname.startsWith(`/twirp/${SERVICE}/`) || !METHODS.includes(method) || contentType !== 'application/json') {
      const route = `${req.method} ${url.pathname}`
      return drainThen(req, () => sendJson(res, 404, { code: (rec.code = 'bad_route'), msg: `no handler for ${route}`, meta: { twirp_invalid_route: route } }))
    }
    rec.method = method
    let body
    try {
      body = await readJson(req)
    } catch {
      return twirpError(res, rec, 400, 'malformed', 'the json request could not be decoded')
    }
    const { key, version } = body
    const restoreKeys = (body.restore_keys ?? []).filter((k) => typeof k === 'string')
    Object.assign(rec, { key, version }, method === 'GetCacheEntryDownloadURL' && { restoreKeys })
    const fault = pickFault(cfg.api, [method])
    if (fault) {
      rec.fault = fault.status
      return twirpError(res, rec, fault.status, TWIRP_CODE[fault.status] ?? 'internal', `cache-v2-double: injected ${fault.status}`)
    }
    const caller = callerOf(req.headers.authorization)
    if (caller.error) return twirpError(res, rec, 401, 'unauthenticated', caller.error, { 'WWW-Authenticate': 'Bearer' })
    rec.scopes = caller.readable
    if (typeof key !== 'string' || !key || typeof version !== 'string' || !version)
      return twirpError(res, rec, 400, 'invalid_argument', 'key and version are required')

    if (method === 'GetCacheEntryDownloadURL') {
      if (!caller.readable.length) return twirpError(res, rec, 403, 'permission_denied', 'cache read denied: the token has no readable cache scope')
      const e = store.lookup([key, ...restoreKeys], version, caller.readable)
      Object.assign(rec, { ok: Boolean(e), hit: Boolean(e) }, e && { matchedKey: e.key, entryId: e.id, scope: e.scope })
      if (!e) return sendJson(res, 200, { ok: false, signed_download_url: '', matched_key: '' })
      return sendJson(res, 200, { ok: true, signed_download_url: sas(req, e.blobName, 'r'), matched_key: e.key })
    }
    if (method === 'CreateCacheEntry') {
      rec.ok = false
      if (!caller.writable)
        return sendJson(res, 200, { ok: false, signed_upload_url: '', message: 'cache write denied: the token has no writable cache scope' })
      if (store.find(key, version, caller.writable)) return twirpError(res, rec, 409, 'already_exists', ALREADY_EXISTS_MESSAGE)
      const now = Date.now()
      while (createTimes.length && createTimes[0] <= now - 60_000) createTimes.shift()
      if (createTimes.length >= entriesPerMinute) {
        const retryAfter = String(Math.max(1, Math.ceil((createTimes[0] + 60_000 - now) / 1000)))
        const msg = `cache entry creation rate limit exceeded: at most ${entriesPerMinute} entries per minute`
        return twirpError(res, rec, 429, 'resource_exhausted', msg, { 'Retry-After': retryAfter })
      }
      createTimes.push(now)
      const e = store.create(key, version, caller.writable)
      e.blobName = `entries/${e.id}`
      Object.assign(rec, { ok: true, entryId: e.id, scope: e.scope })
      return sendJson(res, 200, { ok: true, signed_upload_url: sas(req, e.blobName, 'cw'), message: '' })
    }
    // FinalizeCacheEntryUpload: the entry is usable once its blob exists (finalizing again is a no-op)
    const sizeBytes = toInt64(body.size_bytes)
    if (sizeBytes === undefined) return twirpError(res, rec, 400, 'invalid_argument', 'size_bytes is required')
    const e = store.find(key, version, caller.writable)
    const props =
      e &&
      !e.committed &&
      (await container
        .getBlobClient(e.blobName)
        .getProperties()
        .catch((err) => (err?.statusCode === 404 ? null : Promise.reject(err))))
    if (!e || (!e.committed && !props)) return twirpError(res, rec, 404, 'not_found', 'cache entry not found')
    if (!e.committed) store.commit(e, props.contentLength)
    Object.assign(rec, { ok: true, entryId: e.id, sizeBytes, blobSize: e.size })
    return sendJson(res, 200, { ok: true, entry_id: String(e.id), message: '' })
  }

  async function blob(req, res, url, rec) {
    rec.kind = 'blob'
    const comp = url.searchParams.get('comp')
    const upload = req.method === 'PUT' || req.method === 'POST'
    rec.op = upload
      ? comp === 'blocklist'
        ? 'put-block-list'
        : `put-${comp ?? 'blob'}`
      : req.method === 'HEAD'
        ? 'get-properties'
        : comp
          ? `get-${comp}`
          : 'download'
    const e = url.pathname.startsWith(BLOB_PREFIX) ? store.byId.get(Number(url.pathname.slice(BLOB_PREFIX.length))) : undefined
    if (e) Object.assign(rec, { entryId: e.id, key: e.key })
    const range = req.headers['x-ms-range'] ?? req.headers.range
    if (range) rec.range = String(range)
    const fault = pickFault(cfg.blob, [rec.op, upload ? 'upload' : 'download', req.method], e?.key)
    if (fault) {
      rec.fault = fault.status
      const [code, message] = AZURE_ERROR[fault.status] ?? ['InternalError', 'The server encountered an internal error. Please retry the request.']
      const xml = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`
      const headers = { 'Content-Type': 'application/xml', 'x-ms-error-code': code, 'x-ms-request-id': crypto.randomUUID() }
      return drainThen(req, () => send(res, fault.status, req.method === 'HEAD' ? '' : xml, headers))
    }
    rec.bytes = 0 // of the request body for uploads, of the answer otherwise
    const count = () =>
      new Transform({
        transform(chunk, _enc, cb) {
          rec.bytes += chunk.length
          cb(null, chunk)
        }
      })
    await new Promise((resolve) => {
      const headers = { ...withoutHopByHop(req.headers), host: `127.0.0.1:${azurite.port}` }
      const up = http.request({ host: '127.0.0.1', port: azurite.port, method: req.method, path: req.url, headers, agent })
      const broken = (err) => {
        rec.error = String(err?.message ?? err)
        if (res.headersSent) res.destroy()
        else send(res, 502, `cache-v2-double: azurite: ${rec.error}`)
        resolve()
      }
      up.on('error', broken)
      up.on('response', (answer) => {
        res.writeHead(answer.statusCode ?? 502, withoutHopByHop(answer.headers))
        pipeline(answer, ...(upload ? [] : [count()]), res)
          .catch(() => res.destroy())
          .finally(resolve)
      })
      pipeline(req, ...(upload ? [count()] : []), up).catch((err) => {
        up.destroy()
        broken(err)
      })
    })
  }

  const service = await serveDouble({
    host,
    logFile,
    handle(req, res, url, rec) {
      if (url.pathname.startsWith('/twirp/')) return twirp(req, res, url, rec)
      if (url.pathname.startsWith(`/${ACCOUNT}/`)) return blob(req, res, url, rec)
      if (url.pathname.startsWith('/_apis/artifactcache')) {
        rec.kind = 'legacy'
        return drainThen(req, () => sendArtifactCacheError(res, 422, 'ArtifactCacheServiceDecommissionedException', LEGACY_MESSAGE))
      }
      drainThen(req, () => send(res, 404, '404 page not found\n', { 'Content-Type': 'text/plain; charset=utf-8' }))
    }
  }).catch(async (err) => {
    await azurite.stop()
    throw err
  })
  const { requests, listening } = service

  function summarize() {
    const api = (method) => requests.filter((r) => r.kind === 'api' && r.method === method)
    const lookups = api('GetCacheEntryDownloadURL')
    const blobs = requests.filter((r) => r.kind === 'blob')
    const uniq = (list) => [...new Set(list)]
    const bytes = (list) => list.filter((r) => r.status < 300).reduce((n, r) => n + (r.bytes ?? 0), 0)
    return {
      keysRead: uniq(lookups.flatMap((r) => [r.key, ...(r.restoreKeys ?? [])])),
      keysHit: uniq(lookups.filter((r) => r.hit).map((r) => r.matchedKey)),
      keysCommitted: uniq(
        api('FinalizeCacheEntryUpload')
          .filter((r) => r.ok)
          .map((r) => r.key)
      ),
      counts: {
        requests: requests.length,
        lookups: lookups.length,
        hits: lookups.filter((r) => r.hit).length,
        creates: api('CreateCacheEntry').filter((r) => r.ok).length,
        conflicts: requests.filter((r) => r.code === 'already_exists').length,
        blobRequests: blobs.length,
        uploadedBytes: bytes(blobs.filter((r) => r.op.startsWith('put-'))),
        downloadedBytes: bytes(blobs.filter((r) => r.op === 'download')),
        faults: requests.filter((r) => r.fault !== undefined).length,
        serverErrors: requests.filter((r) => r.status >= 500).length,
        legacy: requests.filter((r) => r.kind === 'legacy').length
      }
    }
  }

  let closed = false
  return {
    /** ACTIONS_RESULTS_URL (with its trailing slash, like the runner's) */
    url: service.url,
    origin: listening.origin,
    port: listening.port,
    token,
    azurite: { pid: azurite.pid, port: azurite.port },
    requests,
    /** A buildx `--cache-from`/`--cache-to` value with the v2 attributes spelled out, e.g. ghaCache({ scope: 'x', mode: 'max' }). */
    ghaCache: (attrs = {}) =>
      ['type=gha', `url_v2=${service.url}`, 'version=2', `token=${token}`, ...Object.entries(attrs).map(([k, v]) => `${k}=${v}`)].join(','),
    /** Replace the faults (see the header); `{}` turns them off. */
    configure: (f) => void (cfg = faultsFrom(f)),
    entries: () => store.list(),
    clearLog: () => void (requests.length = 0),
    summarize,
    async close() {
      if (closed) return
      closed = true
      await listening.close()
      agent.destroy()
      await azurite.stop()
      await fsp.rm(dir, { recursive: true, force: true })
    }
  }
}
