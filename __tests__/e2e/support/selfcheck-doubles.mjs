#!/usr/bin/env node
// Self-check for the e2e test doubles (cache-double.mjs, fault-proxy.mjs).
//   node __tests__/e2e/support/selfcheck-doubles.mjs [--only cache|proxy|cli|real]
// (a) cache double driven by the REAL @actions/cache package (v1 protocol) plus raw checks of
//     the go-actions-cache dialect (BuildKit type=gha);
// (b) fault proxy in front of a tiny fake registry, one check per rule;
// (c) both CLIs;
// (d) optional: real docker buildx + registry if /run/brokkr-stack/stack.env exists.
// Prints "N passed, N failed"; exit code 1 on any failure.

import http from 'node:http'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startCacheDouble, mintRuntimeToken, decodeTokenScopes } from './cache-double.mjs'
import { startFaultProxy } from './fault-proxy.mjs'
import { makeChecks, sha, sleep, spawnCli } from './selfcheck-kit.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, '../../..')
const only = (() => {
  const i = process.argv.indexOf('--only')
  return i > 0 ? process.argv[i + 1] : undefined
})()

const { check, section, summary } = makeChecks()

/** Minimal HTTP client on a fresh connection every time (no keep-alive surprises). */
function request(url, { method = 'GET', headers = {}, body, chunked = false } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    const h = { ...headers }
    if (body !== undefined && !chunked) h['Content-Length'] = String(Buffer.byteLength(body))
    if (chunked) h['Transfer-Encoding'] = 'chunked'
    const req = http.request({ hostname: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h, agent: false }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => {
        const buf = Buffer.concat(chunks)
        resolve({ status: res.statusCode, headers: res.headers, body: buf, text: buf.toString('utf8') })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    if (body !== undefined) {
      if (chunked) {
        const b = Buffer.from(body)
        const step = 64 * 1024
        for (let i = 0; i < b.length; i += step) req.write(b.subarray(i, i + step))
      } else req.write(body)
    }
    req.end()
  })
}

// ---------------------------------------------------------------------------------------------
// (a) cache double

async function cacheChecks() {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'selfcheck-cache-'))
  const double = await startCacheDouble()
  try {
    check('cache: url has trailing slash', /^http:\/\/127\.0\.0\.1:\d+\/$/.test(double.url), double.url)

    // --- token shape
    const parts = double.token.split('.')
    const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString())
    const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString())
    check('token: 3 base64url parts', parts.length === 3 && parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p)))
    check('token: header HS256/JWT', header.alg === 'HS256' && header.typ === 'JWT')
    check(
      'token: ac is a JSON string',
      typeof payload.ac === 'string' && JSON.parse(payload.ac)[0].Scope === 'refs/heads/main' && JSON.parse(payload.ac)[0].Permission === 3,
      payload.ac
    )
    check(
      'token: exp/nbf/iat numbers, ttl 6h',
      [payload.exp, payload.nbf, payload.iat].every(Number.isInteger) && payload.exp - Math.floor(Date.now() / 1000) > 6 * 3600 - 10
    )

    // --- the real @actions/cache client
    process.env.ACTIONS_CACHE_URL = double.url
    process.env.ACTIONS_RUNTIME_TOKEN = double.token
    process.env.GITHUB_SERVER_URL = 'https://github.com'
    process.env.RUNNER_TEMP = path.join(tmp, 'runner-temp')
    delete process.env.ACTIONS_CACHE_SERVICE_V2
    delete process.env.ACTIONS_RESULTS_URL
    delete process.env.ACTIONS_CACHE_MODE
    await fsp.mkdir(process.env.RUNNER_TEMP, { recursive: true })
    const cache = await import(path.join(repoRoot, 'node_modules/@actions/cache/lib/cache.js'))

    const dataDir = path.join(tmp, 'data')
    await fsp.mkdir(path.join(dataDir, 'sub'), { recursive: true })
    const big = crypto.randomBytes(300 * 1024) // incompressible → several chunks
    await fsp.writeFile(path.join(dataDir, 'a.txt'), 'hello cache double\n')
    await fsp.writeFile(path.join(dataDir, 'sub', 'big.bin'), big)
    const paths = [dataDir]

    const id = await cache.saveCache(paths, 'selfcheck-linux-abc123', { uploadChunkSize: 64 * 1024, uploadConcurrency: 4 })
    check('@actions/cache saveCache returns cacheId > 0', typeof id === 'number' && id > 0, id)
    const sum1 = double.summarize()
    const save = sum1.saves.find((s) => s.key === 'selfcheck-linux-abc123')
    check('save: reserved, chunked (>1 PATCH), committed', save && save.reserved && save.chunks > 1 && save.committed, save)
    const patchAccept = double.requests.find((r) => r.method === 'POST')?.accept
    check('client sent Accept api-version=6.0-preview.1', patchAccept === 'application/json;api-version=6.0-preview.1', patchAccept)
    const ent = double.entries().find((e) => e.key === 'selfcheck-linux-abc123')
    check('entry committed with scope refs/heads/main', ent?.committed && ent.scope === 'refs/heads/main', ent)

    // save again with the same key → 409 → ReserveCacheError handled inside (returns -1)
    const id2 = await cache.saveCache(paths, 'selfcheck-linux-abc123')
    check('saveCache same key → -1 (409 conflict handled)', id2 === -1, id2)
    check(
      'double answered 409 on duplicate reserve',
      double.requests.some((r) => r.method === 'POST' && r.path.endsWith('/caches') && r.status === 409)
    )

    // exact restore
    await fsp.rm(dataDir, { recursive: true, force: true })
    const hitKey = await cache.restoreCache(paths, 'selfcheck-linux-abc123')
    check('restoreCache exact key hit', hitKey === 'selfcheck-linux-abc123', hitKey)
    const restored = await fsp.readFile(path.join(dataDir, 'sub', 'big.bin')).catch(() => Buffer.alloc(0))
    check('restored content matches', sha(restored) === sha(big) && fs.readFileSync(path.join(dataDir, 'a.txt'), 'utf8') === 'hello cache double\n')

    // prefix restore key
    await fsp.rm(dataDir, { recursive: true, force: true })
    const prefixHit = await cache.restoreCache(paths, 'selfcheck-linux-zzz999', ['selfcheck-linux-', 'selfcheck-'])
    check('restoreCache via prefix restore key', prefixHit === 'selfcheck-linux-abc123', prefixHit)
    const lastLookup = double.summarize().restores.at(-1)
    check(
      'log records looked-up keys and scopes',
      JSON.stringify(lastLookup.keys) === JSON.stringify(['selfcheck-linux-zzz999', 'selfcheck-linux-', 'selfcheck-']) &&
        lastLookup.matchedBy === 'prefix' &&
        lastLookup.scopes?.[0] === 'refs/heads/main',
      lastLookup
    )
    check('prefix-restored content matches', sha(await fsp.readFile(path.join(dataDir, 'sub', 'big.bin'))) === sha(big))

    // miss
    const miss = await cache.restoreCache(paths, 'nothing-here', ['nope-'])
    check('restoreCache miss → undefined (204)', miss === undefined && double.requests.at(-1).status === 204)

    // lookupOnly
    const lookup = await cache.restoreCache(paths, 'selfcheck-linux-abc123', [], { lookupOnly: true })
    check('restoreCache lookupOnly', lookup === 'selfcheck-linux-abc123')

    // outage
    double.setFailAll(true)
    const before = double.requests.length
    const outRestore = await cache.restoreCache(paths, 'selfcheck-linux-abc123')
    check('failAll: restoreCache → undefined', outRestore === undefined, outRestore)
    let threw = false
    let outSave
    try {
      outSave = await cache.saveCache(paths, 'selfcheck-outage-key')
    } catch {
      threw = true
    }
    check('failAll: saveCache does not throw, returns -1', !threw && outSave === -1, { threw, outSave })
    check('failAll: requests answered 500', double.requests.slice(before).every((r) => r.status === 500) && double.requests.length > before)
    double.setFailAll(false)
    check(
      'failAll off: restore works again',
      (await cache.restoreCache(paths, 'selfcheck-linux-abc123', [], { lookupOnly: true })) === 'selfcheck-linux-abc123'
    )

    // --- raw protocol checks (go-actions-cache dialect)
    const api = (p) => `${double.url}_apis/artifactcache/${p}`
    const auth = { Authorization: `Bearer ${double.token}`, Accept: 'application/json;api-version=6.0-preview.1' }
    const goVersion = crypto.createHash('sha256').update('|go-actionscache-1.0').digest('hex')

    const noAuth = await request(api(`cache?keys=x&version=${goVersion}`))
    check('no bearer → 401', noAuth.status === 401, noAuth.status)

    const payload2 = crypto.randomBytes(10_000)
    const res1 = await request(api('caches'), {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ key: 'buildkit-blob-1-sha256:aa', version: goVersion })
    })
    const cid = JSON.parse(res1.text).cacheId
    check('reserve (go style, no cacheSize) → 201 {cacheId}', res1.status === 201 && cid > 0, res1.text)
    // out of order, parallel chunks
    const chunks = [
      [6000, 9999],
      [0, 2999],
      [3000, 5999]
    ]
    const patchRes = await Promise.all(
      chunks.map(([s, e]) =>
        request(api(`caches/${cid}`), {
          method: 'PATCH',
          headers: { ...auth, 'Content-Type': 'application/octet-stream', 'Content-Range': `bytes ${s}-${e}/*` },
          body: payload2.subarray(s, e + 1)
        })
      )
    )
    check(
      'out-of-order parallel PATCH → 2xx',
      patchRes.every((r) => r.status >= 200 && r.status < 300),
      patchRes.map((r) => r.status)
    )
    const notVisible = await request(api(`cache?keys=buildkit-blob-1-sha256:aa&version=${goVersion}`), { headers: auth })
    check('uncommitted entry invisible (204, empty body)', notVisible.status === 204 && notVisible.body.length === 0)
    const dupReserve = await request(api('caches'), {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ key: 'buildkit-blob-1-sha256:aa', version: goVersion })
    })
    const dupBody = JSON.parse(dupReserve.text || '{}')
    check(
      'reserve of a reserved key → 409 with typeKey *AlreadyExists* (go os.ErrExist)',
      dupReserve.status === 409 && /AlreadyExists/.test(dupBody.typeKey) && /already exists/i.test(dupBody.message),
      dupReserve.text
    )
    const badCommit = await request(api(`caches/${cid}`), {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ size: 12345 })
    })
    check('commit with wrong size → 400', badCommit.status === 400, badCommit.status)
    const commit = await request(api(`caches/${cid}`), {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ size: payload2.length })
    })
    check('commit with right size → 2xx', commit.status >= 200 && commit.status < 300, commit.status)
    const hit = await request(api(`cache?keys=buildkit-blob-1-sha256:aa&version=${goVersion}`), { headers: auth })
    const hitBody = JSON.parse(hit.text)
    check(
      'lookup → 200 {cacheKey, scope, archiveLocation, creationTime}',
      hit.status === 200 &&
        hitBody.cacheKey === 'buildkit-blob-1-sha256:aa' &&
        hitBody.scope === 'refs/heads/main' &&
        hitBody.archiveLocation.startsWith(double.url) &&
        !Number.isNaN(Date.parse(hitBody.creationTime)),
      hit.text
    )
    const wrongVersion = await request(api('cache?keys=buildkit-blob-1-sha256:aa&version=deadbeef'), { headers: auth })
    check('other version → 204', wrongVersion.status === 204)
    const full = await request(hitBody.archiveLocation)
    check(
      'archive GET (no auth) → 200 + Content-Length + exact bytes',
      full.status === 200 && Number(full.headers['content-length']) === payload2.length && sha(full.body) === sha(payload2)
    )
    const ranged = await request(hitBody.archiveLocation, { headers: { Range: 'bytes=100-199' } })
    check(
      'archive Range a-b → 206 + Content-Range',
      ranged.status === 206 && ranged.headers['content-range'] === `bytes 100-199/${payload2.length}` && sha(ranged.body) === sha(payload2.subarray(100, 200)),
      ranged.headers
    )
    const open = await request(hitBody.archiveLocation, { headers: { Range: 'bytes=9000-' } })
    check(
      'archive open-ended Range (go client) → Content-Range "bytes 9000-"',
      open.status === 206 && open.headers['content-range'].startsWith('bytes 9000-') && open.body.length === 1000
    )
    const suffix = await request(hitBody.archiveLocation, { headers: { Range: 'bytes=-10' } })
    check('archive suffix Range', suffix.status === 206 && sha(suffix.body) === sha(payload2.subarray(-10)))
    const unsat = await request(hitBody.archiveLocation, { headers: { Range: 'bytes=20000-' } })
    check('archive unsatisfiable Range → 416', unsat.status === 416 && unsat.headers['content-range'] === `bytes */${payload2.length}`)
    const head = await request(hitBody.archiveLocation, { method: 'HEAD' })
    check(
      'archive HEAD → 200 + Content-Length + Accept-Ranges',
      head.status === 200 && Number(head.headers['content-length']) === payload2.length && head.headers['accept-ranges'] === 'bytes'
    )
    const list = await request(api('caches?key=buildkit-blob-'), { headers: auth })
    const listBody = JSON.parse(list.text)
    check(
      'list caches → {totalCount, artifactCaches}',
      list.status === 200 && listBody.totalCount === 1 && listBody.artifactCaches[0].cacheKey === 'buildkit-blob-1-sha256:aa',
      list.text
    )

    // SaveMutable-like: index#1, index#2 → prefix lookup "index#" returns the newest
    for (const n of [1, 2]) {
      const r = await request(api('caches'), {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ key: `index-x#${n}`, version: goVersion })
      })
      const id = JSON.parse(r.text).cacheId
      await request(api(`caches/${id}`), { method: 'PATCH', headers: { ...auth, 'Content-Range': 'bytes 0-0/*' }, body: String(n) })
      await request(api(`caches/${id}`), { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ size: 1 }) })
    }
    const newest = JSON.parse((await request(api(`cache?keys=${encodeURIComponent('index-x#')}&version=${goVersion}`), { headers: auth })).text)
    check('prefix lookup returns newest committed entry', newest.cacheKey === 'index-x#2', newest)

    // empty blob
    const r0 = await request(api('caches'), {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ key: 'empty', version: goVersion })
    })
    const id0 = JSON.parse(r0.text).cacheId
    const c0 = await request(api(`caches/${id0}`), {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ size: 0 })
    })
    const e0 = JSON.parse((await request(api(`cache?keys=empty&version=${goVersion}`), { headers: auth })).text)
    const g0 = await request(e0.archiveLocation)
    check('zero-byte entry commit + download', c0.status < 300 && g0.status === 200 && g0.body.length === 0 && g0.headers['content-length'] === '0')

    // scopes: feature-branch token (write feature, read main) sees main's entries, writes to feature
    const featTok = mintRuntimeToken({
      scopes: [
        { Scope: 'refs/heads/feat', Permission: 3 },
        { Scope: 'refs/heads/main', Permission: 1 }
      ]
    })
    check('decodeTokenScopes', decodeTokenScopes(featTok)?.length === 2)
    const fAuth = { ...auth, Authorization: `Bearer ${featTok}` }
    const fHit = JSON.parse((await request(api(`cache?keys=index-x%23&version=${goVersion}`), { headers: fAuth })).text || '{}')
    check('feature token reads main scope', fHit.cacheKey === 'index-x#2' && fHit.scope === 'refs/heads/main', fHit)
    const fRes = await request(api('caches'), {
      method: 'POST',
      headers: { ...fAuth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ key: 'index-x#2', version: goVersion })
    })
    check('same key in another scope can be reserved', fRes.status === 201, fRes.text)
    const otherTok = mintRuntimeToken({ scope: 'refs/heads/other' })
    const oMiss = await request(api(`cache?keys=index-x%23&version=${goVersion}`), { headers: { ...auth, Authorization: `Bearer ${otherTok}` } })
    check('unrelated branch token does not see main entries', oMiss.status === 204)
    const roTok = mintRuntimeToken({ permission: 1 })
    const roRes = await request(api('caches'), {
      method: 'POST',
      headers: { ...auth, Authorization: `Bearer ${roTok}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ key: 'ro', version: goVersion })
    })
    check(
      'read-only token reserve → 403 "cache write denied:"',
      roRes.status === 403 && JSON.parse(roRes.text).message.startsWith('cache write denied:'),
      roRes.text
    )

    // log shape
    const someLog = double.requests.find((r) => r.method === 'PATCH')
    check(
      'request log entries have t/method/path/query/status/cacheId/bytes',
      someLog &&
        typeof someLog.t === 'number' &&
        someLog.path.includes('/caches/') &&
        typeof someLog.query === 'object' &&
        someLog.status === 204 &&
        someLog.cacheId > 0 &&
        someLog.bytes > 0,
      someLog
    )
    double.clearLog()
    check('clearLog empties requests', double.requests.length === 0)
    check('control endpoint /__double/summary', (await request(`${double.url}__double/summary`)).status === 200)
  } finally {
    await double.close()
    await fsp.rm(tmp, { recursive: true, force: true })
  }
  check('close() removes its temp storage', !fs.existsSync(double.storageDir))
}

// ---------------------------------------------------------------------------------------------
// (b) fault proxy

async function startFakeRegistry() {
  const manifests = new Map()
  const seen = []
  const bigBlob = crypto.randomBytes(3 * 1024 * 1024 + 17)
  const server = http.createServer(async (req, res) => {
    const chunks = []
    for await (const c of req) chunks.push(c)
    const body = Buffer.concat(chunks)
    const u = new URL(req.url, 'http://x')
    seen.push({
      method: req.method,
      path: u.pathname,
      host: req.headers.host,
      bytes: body.length,
      te: req.headers['transfer-encoding'],
      dup: req.headers['x-dup']
    })
    const base = { 'Docker-Distribution-Api-Version': 'registry/2.0', 'X-Seen-Host': req.headers.host ?? '' }
    let m
    if (u.pathname === '/v2/' || u.pathname === '/v2') {
      res.writeHead(200, { ...base, 'Content-Type': 'application/json', 'Content-Length': '2' })
      return res.end('{}')
    }
    if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(u.pathname))) {
      const k = `${m[1]}:${m[2]}`
      if (req.method === 'PUT') {
        manifests.set(k, body)
        res.writeHead(201, {
          ...base,
          Location: `http://${req.headers.host}/v2/${m[1]}/manifests/sha256:${sha(body)}`,
          'Docker-Content-Digest': `sha256:${sha(body)}`,
          'Content-Length': '0'
        })
        return res.end()
      }
      const dt = manifests.get(k)
      if (!dt) {
        const e = JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] })
        res.writeHead(404, { ...base, 'Content-Type': 'application/json', 'Content-Length': String(e.length) })
        return res.end(req.method === 'HEAD' ? undefined : e)
      }
      res.writeHead(200, { ...base, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': String(dt.length) })
      return res.end(req.method === 'HEAD' ? undefined : dt)
    }
    if (req.method === 'POST' && /\/blobs\/uploads\/$/.test(u.pathname)) {
      // absolute Location pointing at the *target* (as a registry with http.host set would)
      res.writeHead(202, {
        ...base,
        Location: `http://${server.address().address}:${server.address().port}${u.pathname}upload-1?_state=abc`,
        'Content-Length': '0'
      })
      return res.end()
    }
    if (req.method === 'PATCH' && /\/blobs\/uploads\//.test(u.pathname)) {
      res.writeHead(202, { ...base, 'X-Body-Sha': sha(body), 'X-Body-Len': String(body.length), Range: `0-${body.length - 1}`, 'Content-Length': '0' })
      return res.end()
    }
    if (/\/blobs\/sha256:big$/.test(u.pathname)) {
      // chunked response (no Content-Length) for GET, Content-Length for HEAD
      if (req.method === 'HEAD') {
        res.writeHead(200, { ...base, 'Content-Length': String(bigBlob.length) })
        return res.end()
      }
      res.writeHead(200, { ...base, 'Content-Type': 'application/octet-stream' })
      for (let i = 0; i < bigBlob.length; i += 100_000) res.write(bigBlob.subarray(i, i + 100_000))
      return res.end()
    }
    res.writeHead(404, { ...base, 'Content-Length': '0' })
    res.end()
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    bigBlob,
    close: () =>
      new Promise((r) => {
        server.close(r)
        server.closeAllConnections?.()
      })
  }
}

async function proxyChecks() {
  const up = await startFakeRegistry()
  const proxy = await startFaultProxy({ target: up.url, seed: 7 })
  const P = proxy.url
  try {
    check('proxy: host is 127.0.0.1:PORT', /^127\.0\.0\.1:\d+$/.test(proxy.host) && P === `http://${proxy.host}`)

    // --- transparent forwarding
    const ping = await request(`${P}/v2/`)
    check('forward GET /v2/ → 200', ping.status === 200 && proxy.log.at(-1).fate === 'forwarded' && proxy.log.at(-1).status === 200)
    check('client Host header preserved upstream', ping.headers['x-seen-host'] === proxy.host, ping.headers['x-seen-host'])
    const post = await request(`${P}/v2/owner/app/blobs/uploads/`, { method: 'POST', body: '' })
    check(
      'absolute Location to target rewritten to proxy',
      post.status === 202 && post.headers.location.startsWith(`${P}/v2/owner/app/blobs/uploads/upload-1?_state=abc`),
      post.headers.location
    )
    const payload = crypto.randomBytes(5 * 1024 * 1024 + 3)
    const patch = await request(`${P}/v2/owner/app/blobs/uploads/upload-1?_state=abc`, {
      method: 'PATCH',
      body: payload,
      chunked: true,
      headers: { 'Content-Type': 'application/octet-stream', 'X-Dup': 'a' }
    })
    check(
      'chunked 5MB PATCH streamed intact',
      patch.status === 202 && patch.headers['x-body-sha'] === sha(payload) && Number(patch.headers['x-body-len']) === payload.length,
      patch.headers
    )
    check('query string forwarded', up.seen.at(-1).path.endsWith('upload-1') && proxy.log.at(-1).query === '?_state=abc')
    const putPayload = crypto.randomBytes(1024 * 1024)
    const putRes = await request(`${P}/v2/owner/app/blobs/uploads/upload-1?_state=abc`, { method: 'PATCH', body: putPayload })
    check('Content-Length PATCH streamed intact', putRes.headers['x-body-sha'] === sha(putPayload))
    const blob = await request(`${P}/v2/owner/app/blobs/sha256:big`)
    check('chunked GET response streamed intact', blob.status === 200 && sha(blob.body) === sha(up.bigBlob))
    const blobHead = await request(`${P}/v2/owner/app/blobs/sha256:big`, { method: 'HEAD' })
    check('HEAD keeps Content-Length', blobHead.status === 200 && Number(blobHead.headers['content-length']) === up.bigBlob.length)
    const m1 = await request(`${P}/v2/owner/app/manifests/v1`, {
      method: 'PUT',
      body: '{"schemaVersion":2}',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }
    })
    check(
      'manifest PUT → 201 with Location via proxy host',
      m1.status === 201 && m1.headers.location.startsWith(`${P}/v2/owner/app/manifests/sha256:`),
      m1.headers.location
    )

    // --- hide from now
    proxy.configure({ hide: [{ repo: 'owner/app', tag: 'v1', seconds: 1, from: 'now' }] })
    const h1 = await request(`${P}/v2/owner/app/manifests/v1`)
    const h1b = JSON.parse(h1.text)
    check(
      'hide(now): GET → 404 MANIFEST_UNKNOWN',
      h1.status === 404 && h1b.errors[0].code === 'MANIFEST_UNKNOWN' && h1b.errors[0].message === 'manifest unknown' && proxy.log.at(-1).fate === 'hidden',
      h1.text
    )
    const h1h = await request(`${P}/v2/owner/app/manifests/v1`, { method: 'HEAD' })
    check('hide(now): HEAD → 404', h1h.status === 404)
    const other = await request(`${P}/v2/owner/other/manifests/v1`)
    check('hide(now): other repo not hidden (forwarded)', proxy.log.at(-1).fate === 'forwarded' && other.status === 404)
    await sleep(1100)
    const h2 = await request(`${P}/v2/owner/app/manifests/v1`)
    check('hide(now): visible after the window', h2.status === 200 && h2.text === '{"schemaVersion":2}')

    // --- hide from push
    proxy.configure({ hide: [{ tag: 'v2', seconds: 1, from: 'push' }] })
    const pre = await request(`${P}/v2/owner/app/manifests/v2`)
    check('hide(push): before the push requests are forwarded', pre.status === 404 && proxy.log.at(-1).fate === 'forwarded')
    const push = await request(`${P}/v2/owner/app/manifests/v2`, { method: 'PUT', body: '{"v":2}' })
    check('hide(push): PUT forwarded', push.status === 201 && proxy.log.at(-1).fate === 'forwarded')
    const lag = await request(`${P}/v2/owner/app/manifests/v2`)
    check('hide(push): right after push → 404 hidden', lag.status === 404 && proxy.log.at(-1).fate === 'hidden')
    const otherTag = await request(`${P}/v2/owner/app/manifests/v1`)
    check('hide(push): other tag unaffected', otherTag.status === 200)
    await sleep(1100)
    check('hide(push): visible after N seconds', (await request(`${P}/v2/owner/app/manifests/v2`)).status === 200)
    await request(`${P}/v2/owner/app/manifests/v2`, { method: 'PUT', body: '{"v":2}' })
    check('hide(push): a re-push re-arms the window', (await request(`${P}/v2/owner/app/manifests/v2`)).status === 404)
    proxy.configure({ hide: [{ tag: 'v2', seconds: 0.5, from: 'push', rearm: false }] })
    await request(`${P}/v2/owner/app/manifests/v2`, { method: 'PUT', body: '{"v":2}' })
    await sleep(600)
    await request(`${P}/v2/owner/app/manifests/v2`, { method: 'PUT', body: '{"v":2}' })
    check('hide(push, rearm:false): only the first push counts', (await request(`${P}/v2/owner/app/manifests/v2`)).status === 200)

    // --- errorRate reproducibility + Retry-After
    const runErrors = async () => {
      proxy.configure({ errorRate: 0.3, retryAfter: 2 })
      proxy.clearLog()
      const seenBefore = up.seen.length
      const out = []
      for (let i = 0; i < 300; i++) {
        const r = await request(`${P}/v2/`)
        out.push(r)
      }
      return { out, fates: proxy.log.map((e) => `${e.fate}:${e.status}`), forwardedUpstream: up.seen.length - seenBefore }
    }
    const a = await runErrors()
    const errs = a.out.filter((r) => r.status !== 200)
    const rate = errs.length / a.out.length
    check('errorRate 0.3 roughly honored', rate > 0.22 && rate < 0.38, rate)
    check('faulted requests never reach upstream', a.forwardedUpstream === a.out.length - errs.length, {
      fwd: a.forwardedUpstream,
      ok: a.out.length - errs.length
    })
    check(
      'statuses drawn from default [500,502,503,429], all used',
      [500, 502, 503, 429].every((s) => errs.some((r) => r.status === s)) && errs.every((r) => [500, 502, 503, 429].includes(r.status))
    )
    check(
      'Retry-After on 429/503',
      errs.filter((r) => r.status === 429 || r.status === 503).every((r) => r.headers['retry-after'] === '2')
    )
    check(
      'no Retry-After on 500/502',
      errs.filter((r) => r.status === 500 || r.status === 502).every((r) => r.headers['retry-after'] === undefined)
    )
    check(
      'error bodies are registry-style JSON',
      errs.every((r) => Array.isArray(JSON.parse(r.text).errors))
    )
    const b = await runErrors()
    check('same seed → same fault sequence', JSON.stringify(a.fates) === JSON.stringify(b.fates))
    proxy.configure({ errorRate: 0.3, seed: 99 })
    proxy.clearLog()
    for (let i = 0; i < 60; i++) await request(`${P}/v2/`)
    check('different seed → different sequence', JSON.stringify(proxy.log.map((e) => `${e.fate}:${e.status}`)) !== JSON.stringify(a.fates.slice(0, 60)))

    // custom statuses; body upload faults not forwarded
    proxy.configure({ errorRate: 1, statuses: [503], retryAfter: 5 })
    const seenBefore = up.seen.length
    const fUp = await request(`${P}/v2/owner/app/blobs/uploads/upload-1?_state=abc`, { method: 'PATCH', body: crypto.randomBytes(2 * 1024 * 1024) })
    check(
      'faulted PATCH answered 503 + Retry-After: 5, not forwarded',
      fUp.status === 503 && fUp.headers['retry-after'] === '5' && up.seen.length === seenBefore,
      { s: fUp.status, ra: fUp.headers['retry-after'] }
    )
    const nonV2 = await request(`${P}/healthz`)
    check('non-/v2/ paths are not faulted', proxy.log.at(-1).fate === 'forwarded' && nonV2.status === 404)

    // --- outage
    proxy.configure({ outageSeconds: 1 })
    const o1 = await request(`${P}/v2/`)
    check('outage: 503 + Retry-After: 1', o1.status === 503 && o1.headers['retry-after'] === '1' && proxy.log.at(-1).fate === 'outage')
    const o2 = await request(`${P}/v2/owner/app/manifests/v1`)
    check('outage: every /v2/ request', o2.status === 503)
    await sleep(1100)
    check('outage: over after N seconds', (await request(`${P}/v2/`)).status === 200)

    // --- forced statuses
    proxy.configure({ status: [{ pathRegex: '.*', status: 401 }] })
    const f401 = await request(`${P}/v2/`)
    check(
      'forced 401 everywhere (+WWW-Authenticate, UNAUTHORIZED)',
      f401.status === 401 &&
        /realm/.test(f401.headers['www-authenticate'] ?? '') &&
        JSON.parse(f401.text).errors[0].code === 'UNAUTHORIZED' &&
        proxy.log.at(-1).fate === 'forced'
    )
    check('forced 401 stays', (await request(`${P}/v2/owner/app/manifests/v1`)).status === 401)
    proxy.configure({ status: [{ pathRegex: '/blobs/', status: 403, count: 2 }] })
    const fs1 = await request(`${P}/v2/owner/app/blobs/sha256:big`, { method: 'HEAD' })
    const fs2 = await request(`${P}/v2/owner/app/blobs/sha256:big`, { method: 'HEAD' })
    const fs3 = await request(`${P}/v2/owner/app/blobs/sha256:big`, { method: 'HEAD' })
    const fm = await request(`${P}/v2/owner/app/manifests/v1`)
    check('forced 403 with count 2 → two 403 then forwarded', fs1.status === 403 && fs2.status === 403 && fs3.status === 200 && fm.status === 200, [
      fs1.status,
      fs2.status,
      fs3.status,
      fm.status
    ])
    proxy.configure({ status: [{ pathRegex: /manifests/, status: 500, methods: ['PUT'] }] })
    const fput = await request(`${P}/v2/owner/app/manifests/v3`, { method: 'PUT', body: '{}' })
    const fget = await request(`${P}/v2/owner/app/manifests/v1`)
    check('forced status with RegExp + method filter', fput.status === 500 && fget.status === 200)

    // --- resets
    proxy.configure({ resetRate: 1 })
    let resetErr
    try {
      await request(`${P}/v2/`)
    } catch (err) {
      resetErr = err
    }
    check(
      'resetRate 1: socket reset, no answer',
      resetErr &&
        /socket hang up|ECONNRESET/.test(String(resetErr.code ?? resetErr.message)) &&
        proxy.log.at(-1).fate === 'reset' &&
        proxy.log.at(-1).status === null,
      String(resetErr)
    )
    proxy.configure({ resetRate: 0.5, seed: 3 })
    proxy.clearLog()
    let resets = 0
    for (let i = 0; i < 100; i++) {
      try {
        await request(`${P}/v2/`)
      } catch {
        resets++
      }
    }
    check('resetRate 0.5 roughly honored and logged', resets > 35 && resets < 65 && proxy.log.filter((e) => e.fate === 'reset').length === resets, resets)

    // --- control endpoints
    const ctl = await request(`${P}/__fault/rules`, { method: 'POST', body: JSON.stringify({ status: [{ pathRegex: '^/v2/$', status: 429, retryAfter: 3 }] }) })
    const viaCtl = await request(`${P}/v2/`)
    check('control POST /__fault/rules reconfigures', ctl.status === 200 && viaCtl.status === 429 && viaCtl.headers['retry-after'] === '3')
    const logRes = await request(`${P}/__fault/log`)
    check('control GET /__fault/log', logRes.status === 200 && JSON.parse(logRes.text).at(-1).fate === 'forced')
    proxy.configure({})
    check('empty rules → plain forwarding', (await request(`${P}/v2/`)).status === 200)
    const entry = proxy.log.at(-1)
    check(
      'log entry shape {t, method, path, fate, status}',
      typeof entry.t === 'number' && entry.method === 'GET' && entry.path === '/v2/' && entry.fate === 'forwarded' && entry.status === 200,
      entry
    )
  } finally {
    await proxy.close()
    await up.close()
  }
}

// ---------------------------------------------------------------------------------------------
// (c) CLIs

async function cliChecks() {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'selfcheck-cli-'))
  try {
    const stateFile = path.join(tmp, 'cache.json')
    const c = spawnCli('cache-double.mjs', ['--state-file', stateFile])
    const info = await c.first
    check(
      'cache CLI prints {url, token, pid}',
      /^http:\/\/127\.0\.0\.1:\d+\/$/.test(info.url) && info.token.split('.').length === 3 && info.pid === c.child.pid,
      info
    )
    check('cache CLI writes --state-file', JSON.parse(await fsp.readFile(stateFile, 'utf8')).url === info.url)
    const r = await request(`${info.url}_apis/artifactcache/cache?keys=a&version=b`, { headers: { Authorization: `Bearer ${info.token}` } })
    await sleep(50)
    const logLine = c
      .stderr()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .at(-1)
    check('cache CLI answers + logs JSON lines to stderr', r.status === 204 && logLine.status === 204 && logLine.path === '/_apis/artifactcache/cache')
    c.child.kill('SIGTERM')
    const ex = await c.exited
    check('cache CLI stops on SIGTERM (exit 0)', ex.code === 0, ex)

    const up = await startFakeRegistry()
    const p = spawnCli('fault-proxy.mjs', ['--target', up.url, '--rules', JSON.stringify({ status: [{ pathRegex: '^/v2/$', status: 503, count: 1 }] })])
    const pinfo = await p.first
    check('proxy CLI prints {url, pid}', /^http:\/\/127\.0\.0\.1:\d+$/.test(pinfo.url) && pinfo.pid === p.child.pid, pinfo)
    const s1 = await request(`${pinfo.url}/v2/`)
    const s2 = await request(`${pinfo.url}/v2/`)
    check('proxy CLI applies --rules', s1.status === 503 && s2.status === 200, [s1.status, s2.status])
    p.child.kill('SIGINT')
    const pex = await p.exited
    check('proxy CLI stops on SIGINT (exit 0)', pex.code === 0, pex)
    await up.close()
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// (d) optional: real docker/buildkit against the doubles

function readEnvFile(file) {
  const env = {}
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line)
    if (m) env[m[1]] = m[2].replace(/^(['"])(.*)\1$/, '$2')
  }
  return env
}

// Async on purpose: the doubles live in this process, so a spawnSync would block their event loop.
function run(cmd, args, { input, timeoutMs = 10 * 60 * 1000, ...opts } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', (error) => {
      clearTimeout(timer)
      resolve({ code: -1, out: `${out}${error.message}`, error })
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
    child.stdin.end(input ?? '')
  })
}

async function realChecks() {
  const stackEnv = '/run/brokkr-stack/stack.env'
  if (!fs.existsSync(stackEnv)) {
    process.stderr.write(`  skip real-client checks: ${stackEnv} not present\n`)
    return
  }
  const s = readEnvFile(stackEnv)
  const dockerBin = s.BROKKR_STACK_BIN ? path.join(s.BROKKR_STACK_BIN, 'docker') : 'docker'
  const docker = fs.existsSync(dockerBin) ? dockerBin : 'docker'
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'selfcheck-real-'))
  const env = { ...process.env, ...s, DOCKER_CONFIG: path.join(tmp, 'docker-config') }
  if (s.BROKKR_STACK_BIN) env.PATH = `${s.BROKKR_STACK_BIN}:${process.env.PATH}`
  await fsp.mkdir(env.DOCKER_CONFIG, { recursive: true })
  if (s.BROKKR_BUILDX_PLUGIN) {
    await fsp.mkdir(path.join(env.DOCKER_CONFIG, 'cli-plugins'), { recursive: true })
    await fsp.symlink(s.BROKKR_BUILDX_PLUGIN, path.join(env.DOCKER_CONFIG, 'cli-plugins', 'docker-buildx'))
  }
  const ver = await run(docker, ['version', '--format', '{{.Server.Version}}'], { env })
  if (ver.code !== 0) {
    process.stderr.write(`  skip real-client checks: docker not reachable: ${ver.out}\n`)
    return
  }
  const double = await startCacheDouble({ host: process.env.SELFCHECK_BIND ?? '127.0.0.1' })
  const registry = s.BROKKR_REGISTRY?.includes('://') ? s.BROKKR_REGISTRY : `http://${s.BROKKR_REGISTRY}`
  const proxy = await startFaultProxy({ target: registry, host: process.env.SELFCHECK_BIND ?? '127.0.0.1' })
  try {
    const ctx = path.join(tmp, 'ctx')
    await fsp.mkdir(ctx)
    const nonce = crypto.randomBytes(6).toString('hex')
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), `FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n`)
    await fsp.writeFile(path.join(ctx, 'a.txt'), `a ${nonce}\n`)
    await fsp.writeFile(path.join(ctx, 'b.txt'), `b ${nonce}\n`)
    const benv = { ...env, ACTIONS_CACHE_URL: double.url, ACTIONS_RUNTIME_TOKEN: double.token }
    delete benv.ACTIONS_CACHE_SERVICE_V2
    delete benv.ACTIONS_RESULTS_URL
    const builder = process.env.SELFCHECK_BUILDER ?? 'default'
    /** buildx build of ctx exporting to and importing from the gha cache double under `scope` */
    const ghaBuild = (scope, toAttrs = '') =>
      run(
        docker,
        [
          'buildx',
          'build',
          '--builder',
          builder,
          '--progress',
          'plain',
          '--cache-to',
          `type=gha,scope=${scope},mode=max${toAttrs}`,
          '--cache-from',
          `type=gha,scope=${scope}`,
          ctx
        ],
        {
          env: benv
        }
      )
    const b1 = await ghaBuild('selfcheck')
    const sum = double.summarize()
    check('real buildx: build with gha cache export succeeds', b1.code === 0, b1.out.slice(-3000))
    check(
      'real buildx: committed blobs + index in the double',
      sum.saves.some((x) => x.committed && x.key.startsWith('buildkit-blob')) && sum.saves.some((x) => x.committed && /index/.test(x.key)),
      sum.saves.map((x) => `${x.key}:${x.status}:${x.committed}`)
    )
    double.setFailAll(true)
    const bf = await ghaBuild('selfcheck-outage', ',ignore-error=true')
    check(
      'real buildx: cache outage (500s) + ignore-error=true → build still succeeds',
      bf.code === 0 && double.requests.some((r) => r.status === 500),
      bf.out.slice(-2000)
    )
    double.setFailAll(false)
    double.clearLog()
    const b2 = await run(docker, ['buildx', 'build', '--builder', builder, '--progress', 'plain', '--cache-from', 'type=gha,scope=selfcheck', ctx], {
      env: benv
    })
    const sum2 = double.summarize()
    check('real buildx: import from gha cache looks up + hits', b2.code === 0 && sum2.counts.hits > 0, {
      code: b2.code,
      counts: sum2.counts,
      out: b2.out.slice(-2000)
    })

    // push through the proxy
    const login = await run(docker, ['login', proxy.host, '-u', s.BROKKR_REGISTRY_USER ?? '', '--password-stdin'], {
      env,
      input: s.BROKKR_REGISTRY_PASSWORD ?? ''
    })
    check('docker login via proxy', login.code === 0 || !s.BROKKR_REGISTRY_USER, login.out)
    const tag = `${proxy.host}/selfcheck/proxy:${nonce}`
    const push = await run(
      docker,
      ['buildx', 'build', '--builder', builder, '--progress', 'plain', '--output', `type=image,name=${tag},push=true,registry.insecure=true`, ctx],
      { env }
    )
    check(
      'buildx push through the proxy',
      push.code === 0 && proxy.log.some((e) => e.method === 'PUT' && /manifests/.test(e.path) && e.status === 201),
      push.out.slice(-3000)
    )
    proxy.configure({ hide: [{ tag: nonce, seconds: 2, from: 'now' }] })
    const insp = await run(docker, ['buildx', 'imagetools', 'inspect', tag], { env })
    check('hidden tag not found by imagetools', insp.code !== 0)
    await sleep(2100)
    const insp2 = await run(docker, ['buildx', 'imagetools', 'inspect', tag], { env })
    check('tag visible after hide window', insp2.code === 0, insp2.out)
  } finally {
    await proxy.close()
    await double.close()
    await fsp.rm(tmp, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------

const t0 = Date.now()
if (!only || only === 'cache') await section('cache double (+ real @actions/cache)', cacheChecks)
if (!only || only === 'proxy') await section('fault proxy', proxyChecks)
if (!only || only === 'cli') await section('CLIs', cliChecks)
if (!only || only === 'real') await section('real docker/buildkit (optional)', realChecks)
process.exit(summary(t0))
