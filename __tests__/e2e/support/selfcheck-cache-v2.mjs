#!/usr/bin/env node
// Self-check for cache-v2-double.mjs (the Actions cache service v2 double).
//   node __tests__/e2e/support/selfcheck-cache-v2.mjs [--only double|cli] [--verbose]
// (a) the double driven by the REAL @actions/cache client (ACTIONS_CACHE_SERVICE_V2=True,
//     ACTIONS_RESULTS_URL, ACTIONS_RUNTIME_TOKEN, no ACTIONS_CACHE_URL): save, restore by key,
//     by restore-key prefix, miss, version mismatch, conflict, API 429 with Retry-After, API 500
//     retried, blob 503 once (retried) and always (save fails with a warning), the v1 client refused;
//     plus raw checks of the dialect BuildKit's go-actions-cache speaks (block uploads, ranged
//     download, restore_keys holding the primary key, size_bytes as a number, already_exists);
// (b) its CLI: state file, flags, admin endpoints, log file, SIGTERM.
// Everything it starts (the doubles and their Azurite children) is stopped by pid; the last lines
// on stdout are `pids: [...]` (every Azurite and CLI pid it started, for the caller to check) and
// "N passed, N failed". Exit code 1 on any failure.
//
// @actions/core prints workflow commands on stdout: they are caught here (and passed to stderr,
// ::debug:: lines only with --verbose) so the checks can read the client's warnings.

import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { BlobClient, BlockBlobClient } from '@azure/storage-blob'
import { startCacheV2Double, SERVICE, LEGACY_MESSAGE, ALREADY_EXISTS_MESSAGE } from './cache-v2-double.mjs'
import { mintRuntimeToken } from './cache-double.mjs'
import { makeChecks, sha, sleep, spawnCli as spawnDoubleCli } from './selfcheck-kit.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, '../../..')
const argv = process.argv.slice(2)
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined
const verbose = argv.includes('--verbose')

// --- capture @actions/core output
const realStdoutWrite = process.stdout.write.bind(process.stdout)
/** @type {string[]} */
const coreLines = []
process.stdout.write = (chunk, ...rest) => {
  const s = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
  for (const line of s.split('\n')) if (line) coreLines.push(line)
  if (verbose || !s.startsWith('::debug::')) process.stderr.write(s)
  const cb = rest.find((x) => typeof x === 'function')
  if (cb) cb()
  return true
}
const coreSince = (mark) => coreLines.slice(mark)

const { check, section, summary } = makeChecks()
const alive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
async function goneWithin(pid, ms) {
  const end = Date.now() + ms
  while (alive(pid) && Date.now() < end) await sleep(50)
  return !alive(pid)
}
/** Every pid started here (Azurite children, CLI processes), reported on stdout at the end. */
const startedPids = []

/** POST a Twirp JSON request the way go-actions-cache does. */
async function twirp(base, method, body, { token, contentType = 'application/json', httpMethod = 'POST', raw } = {}) {
  const headers = { 'Content-Type': contentType }
  if (token) headers.Authorization = `Bearer ${token}`
  const res = await fetch(`${base}twirp/${SERVICE}/${method}`, {
    method: httpMethod,
    headers,
    body: httpMethod === 'GET' ? undefined : (raw ?? JSON.stringify(body ?? {}))
  })
  const text = await res.text()
  let json
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, text, json }
}

async function writeData(dir, seed, size = 256 * 1024) {
  await fsp.rm(dir, { recursive: true, force: true })
  await fsp.mkdir(path.join(dir, 'sub'), { recursive: true })
  const big = crypto.createHash('sha512').update(seed).digest()
  const buf = Buffer.alloc(size)
  // incompressible-ish, deterministic per seed
  for (let i = 0; i < size; i += 64) crypto.createHash('sha512').update(big).update(String(i)).digest().copy(buf, i)
  await fsp.writeFile(path.join(dir, 'sub', 'big.bin'), buf)
  await fsp.writeFile(path.join(dir, 'a.txt'), `hello ${seed}\n`)
  return sha(buf)
}
const dataSha = async (dir) => sha(await fsp.readFile(path.join(dir, 'sub', 'big.bin')).catch(() => Buffer.alloc(0)))

// ---------------------------------------------------------------------------------------------
// (a) the double + the real @actions/cache client

async function doubleChecks() {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'selfcheck-cache-v2-'))
  const double = await startCacheV2Double()
  startedPids.push(double.azurite.pid)
  const bg = []
  try {
    check('url is an origin with a trailing slash', /^http:\/\/127\.0\.0\.1:\d+\/$/.test(double.url), double.url)
    check('azurite runs as a child with its own pid', Number.isInteger(double.azurite.pid) && alive(double.azurite.pid) && double.azurite.pid !== process.pid)
    const env = double.env()
    check(
      'env(): ACTIONS_RESULTS_URL, ACTIONS_RUNTIME_TOKEN, ACTIONS_CACHE_SERVICE_V2=True, no ACTIONS_CACHE_URL',
      env.ACTIONS_RESULTS_URL === double.url &&
        env.ACTIONS_RUNTIME_TOKEN === double.token &&
        env.ACTIONS_CACHE_SERVICE_V2 === 'True' &&
        !('ACTIONS_CACHE_URL' in env),
      env
    )

    // --- the real client, v2
    Object.assign(process.env, env, { GITHUB_SERVER_URL: 'https://github.com', RUNNER_TEMP: path.join(tmp, 'runner-temp') })
    delete process.env.ACTIONS_CACHE_URL
    delete process.env.ACTIONS_CACHE_MODE
    delete process.env.ACTIONS_CACHE_API_FORCE_VERSION
    await fsp.mkdir(process.env.RUNNER_TEMP, { recursive: true })
    const cache = await import(path.join(repoRoot, 'node_modules/@actions/cache/lib/cache.js'))

    // --- in the background (the Azure SDK's own retry delays make it slow): every upload of this
    // key answers 503; the SDK tries 4 times (after 0 s, 4 s, 12 s) and gives up. Its rule stays
    // in force while the rest runs: every configure() below keeps it.
    const bgFaults = { api: [], blob: [{ status: 503, methods: ['upload'], keyRegex: 'blob503always' }] }
    const withBg = (f = {}) =>
      double.configure({
        ...f,
        api: [...bgFaults.api, ...[].concat(f.api ?? [])],
        blob: [...bgFaults.blob, ...[].concat(f.blob ?? [])]
      })
    withBg()
    const failDir = path.join(tmp, 'blob503')
    await writeData(failDir, 'F', 16 * 1024)
    bg.push(
      (async () => {
        const t0 = Date.now()
        const r = await cache.saveCache([failDir], 'selfcheck-v2-blob503always')
        return { name: 'blob503', r, ms: Date.now() - t0 }
      })()
    )

    // paths are hashed into the version: keep each one stable, like a runner's RUNNER_TEMP
    const dataDir = path.join(tmp, 'data')
    const paths = [dataDir]
    const keyA = 'selfcheck-v2-linux-aaa'
    const shaA = await writeData(dataDir, 'A')
    const idA = await cache.saveCache(paths, keyA)
    const s1 = double.summarize()
    check('saveCache → entry id > 0', typeof idA === 'number' && idA > 0, idA)
    const createA = s1.creates.find((c) => c.key === keyA)
    const finA = s1.finalizes.find((f) => f.key === keyA)
    const upA = s1.uploads.filter((u) => u.key === keyA)
    check(
      'CreateCacheEntry ok, scope refs/heads/main, 64-hex version',
      createA?.ok && createA.scope === 'refs/heads/main' && /^[0-9a-f]{64}$/.test(createA.version),
      createA
    )
    check(
      'archive uploaded through the blob proxy (Put Blob, 201)',
      upA.length === 1 && upA[0].op === 'put-blob' && upA[0].status === 201 && upA[0].bytes > 0,
      upA
    )
    check(
      'FinalizeCacheEntryUpload ok, size_bytes = uploaded bytes = blob size',
      finA?.ok && finA.sizeBytes === upA[0]?.bytes && finA.blobSize === finA.sizeBytes && finA.entryId === idA,
      finA
    )
    check('log: keysWritten / keysCommitted', s1.keysWritten.includes(keyA) && JSON.stringify(s1.keysCommitted) === JSON.stringify([keyA]), s1)
    check('client sent its user agent', double.requests.find((r) => r.method === 'CreateCacheEntry')?.ua?.startsWith('@actions/cache'), double.requests[0]?.ua)
    const stored = await double.readEntry(keyA)
    check('readEntry(key) returns the stored archive', stored?.length === finA?.sizeBytes)

    // an entry for the API-500 check below
    const retryDir = path.join(tmp, 'retry500')
    const shaR = await writeData(retryDir, 'R', 8 * 1024)
    const idR = await cache.saveCache([retryDir], 'selfcheck-v2-retry500')
    check('second entry saved', idR > idA, idR)

    // one 500 on this lookup: @actions/cache retries after 3 s
    withBg({ api: { status: 500, count: 1, methods: ['GetCacheEntryDownloadURL'], keyRegex: '^selfcheck-v2-retry500$' } })
    await fsp.rm(retryDir, { recursive: true, force: true })
    let mark = coreLines.length
    const t500 = Date.now()
    const r500key = await cache.restoreCache([retryDir], 'selfcheck-v2-retry500')
    const r500ms = Date.now() - t500
    const r500 = double.requests.filter((r) => r.method === 'GetCacheEntryDownloadURL' && r.key === 'selfcheck-v2-retry500')
    check(
      'API 500 once: the client retried after ~3 s and restored',
      r500key === 'selfcheck-v2-retry500' &&
        (await dataSha(retryDir)) === shaR &&
        r500.map((r) => r.status).join(',') === '500,200' &&
        r500[0].code === 'internal' &&
        r500ms >= 2900,
      { r500key, r500ms, st: r500.map((r) => r.status) }
    )
    check(
      'API 500 once: the client logged its retry',
      coreSince(mark).some((l) => /Attempt 1 of 5 failed.*\(500\)/.test(l)),
      coreSince(mark)
    )
    withBg()

    // --- duplicate save → 409 already_exists
    mark = coreLines.length
    const dup = await cache.saveCache(paths, keyA)
    const dupRec = double.requests.filter((r) => r.method === 'CreateCacheEntry' && r.key === keyA).at(-1)
    check('saveCache of an existing key → -1', dup === -1, dup)
    check('CreateCacheEntry of an existing key → 409 already_exists', dupRec?.status === 409 && dupRec.code === 'already_exists', dupRec)
    check(
      'client reports it',
      coreSince(mark).some((l) => l.includes(ALREADY_EXISTS_MESSAGE) || l.includes('another job may be creating this cache')),
      coreSince(mark)
    )

    // --- exact restore
    await fsp.rm(dataDir, { recursive: true, force: true })
    const hitA = await cache.restoreCache(paths, keyA)
    check('restoreCache(key) → exact hit', hitA === keyA, hitA)
    check('restored content matches', (await dataSha(dataDir)) === shaA && fs.readFileSync(path.join(dataDir, 'a.txt'), 'utf8') === 'hello A\n')
    const lastLookup = () => double.summarize().lookups.at(-1)
    check('log: lookup hit, matchedBy exact', lastLookup().hit && lastLookup().matchedBy === 'exact' && lastLookup().matchedKey === keyA, lastLookup())
    const dl = double.summarize().downloads.at(-1)
    check('log: download of the whole blob', dl?.key === keyA && dl.status === 200 && dl.bytes === finA?.sizeBytes, dl)

    // --- miss by key
    const missRes = await cache.restoreCache(paths, 'selfcheck-v2-nothing-here')
    check('restoreCache(unknown key) → undefined', missRes === undefined, missRes)
    check(
      'log: lookup ok:false (HTTP 200), not a hit',
      lastLookup().status === 200 && lastLookup().hit === false && lastLookup().key === 'selfcheck-v2-nothing-here',
      lastLookup()
    )

    // --- restore by restore-key prefix, newest wins
    await fsp.rm(dataDir, { recursive: true, force: true })
    const viaRestoreKey = await cache.restoreCache(paths, 'selfcheck-v2-linux-zzz', ['selfcheck-v2-nope-', 'selfcheck-v2-linux-'])
    check('restoreCache via restore-key prefix', viaRestoreKey === keyA, viaRestoreKey)
    check(
      'log: restore keys recorded, matchedBy restore-key-prefix',
      JSON.stringify(lastLookup().restoreKeys) === JSON.stringify(['selfcheck-v2-nope-', 'selfcheck-v2-linux-']) &&
        lastLookup().matchedBy === 'restore-key-prefix',
      lastLookup()
    )
    check('prefix-restored content matches', (await dataSha(dataDir)) === shaA)
    const keyB = 'selfcheck-v2-linux-bbb'
    const shaB = await writeData(dataDir, 'B')
    const idB = await cache.saveCache(paths, keyB)
    await fsp.rm(dataDir, { recursive: true, force: true })
    const newest = await cache.restoreCache(paths, 'selfcheck-v2-linux-zzz', ['selfcheck-v2-linux-'])
    check('several prefix matches → the newest entry', idB > 0 && newest === keyB && (await dataSha(dataDir)) === shaB, { idB, newest })
    const primaryPrefix = await cache.restoreCache(paths, 'selfcheck-v2-linux-a', [], { lookupOnly: true })
    check('the primary key also matches as a prefix (documented order)', primaryPrefix === keyA && lastLookup().matchedBy === 'prefix', lastLookup())

    // --- version semantics: other paths → other version → miss
    const otherPaths = [path.join(tmp, 'elsewhere')]
    const otherVersion = await cache.restoreCache(otherPaths, keyA, [], { lookupOnly: true })
    check('same key, other paths (version) → miss', otherVersion === undefined && lastLookup().version !== createA?.version, lastLookup())

    // --- lookupOnly: no download
    const dlBefore = double.summarize().downloads.length
    const lookupOnly = await cache.restoreCache(paths, keyA, [], { lookupOnly: true })
    check('lookupOnly → key, no blob download', lookupOnly === keyA && double.summarize().downloads.length === dlBefore)

    // --- API 429 with Retry-After (the client gives up at once and warns)
    withBg({ api: { status: 429, retryAfter: 7, count: 1, methods: ['CreateCacheEntry'] } })
    mark = coreLines.length
    const rl = await cache.saveCache(paths, 'selfcheck-v2-ratelimited')
    const rlRec = double.requests.filter((r) => r.key === 'selfcheck-v2-ratelimited')
    check('API 429: saveCache → -1, not retried', rl === -1 && rlRec.filter((r) => r.kind === 'api').length === 1, { rl, n: rlRec.length })
    check(
      'API 429: logged with Retry-After 7 and resource_exhausted',
      rlRec[0]?.status === 429 && rlRec[0].retryAfter === 7 && rlRec[0].code === 'resource_exhausted' && rlRec[0].fault === 429,
      rlRec[0]
    )
    check(
      'API 429: client warns with the Retry-After seconds',
      coreSince(mark).some((l) => l.startsWith('::warning::') && l.includes('rate limit will reset in 7 seconds')),
      coreSince(mark)
    )
    check(
      'API 429: nothing written for that key',
      !double.summarize().keysWritten.includes('selfcheck-v2-ratelimited') && !rlRec.some((r) => r.kind === 'blob')
    )
    const afterRl = await cache.saveCache(paths, 'selfcheck-v2-ratelimited')
    check('count 1: the next save goes through', afterRl > 0, afterRl)

    // --- blob 503 once: the Azure SDK retries at once and the save succeeds
    withBg({ blob: { status: 503, count: 1, methods: ['upload'], keyRegex: 'blob503once' } })
    const once = await cache.saveCache(paths, 'selfcheck-v2-blob503once')
    const onceRecs = double.requests.filter((r) => r.kind === 'blob' && r.key === 'selfcheck-v2-blob503once')
    check(
      'blob 503 once: saved after the SDK retried',
      once > 0 && onceRecs.map((r) => r.status).join(',') === '503,201' && onceRecs[0].fault === 503,
      onceRecs.map((r) => [r.op, r.status, r.fault])
    )
    withBg()

    // --- throttled and delayed blobs
    const urlRes = await twirp(double.url, 'GetCacheEntryDownloadURL', { key: keyA, version: createA.version }, { token: double.token })
    const signed = urlRes.json?.signed_download_url
    withBg({ blobBytesPerSecond: 100 * 1024 })
    let t0 = Date.now()
    const slow = Buffer.from(await (await fetch(signed)).arrayBuffer())
    const slowMs = Date.now() - t0
    check('blobBytesPerSecond throttles downloads', slow.length === finA.sizeBytes && slowMs >= (slow.length / (100 * 1024)) * 1000 * 0.8, {
      bytes: slow.length,
      slowMs
    })
    withBg({ blobDelayMs: 400 })
    t0 = Date.now()
    const delayed = await fetch(signed, { method: 'HEAD' })
    check('blobDelayMs delays blob requests', delayed.status === 200 && Date.now() - t0 >= 380, Date.now() - t0)
    withBg()

    // --- raw protocol checks (the go-actions-cache dialect and the Twirp envelope)
    const goVersion = crypto.createHash('sha256').update('|go-actionscache-1.0').digest('hex')
    const tok = double.token
    const miss = await twirp(double.url, 'GetCacheEntryDownloadURL', { key: 'buildkit-x', restore_keys: ['buildkit-x'], version: goVersion }, { token: tok })
    check(
      'miss body: {ok:false, signed_download_url:"", matched_key:""}',
      miss.status === 200 && miss.text === '{"ok":false,"signed_download_url":"","matched_key":""}',
      miss.text
    )
    const nullRk = await twirp(double.url, 'GetCacheEntryDownloadURL', { key: 'buildkit-x', restore_keys: null, version: goVersion }, { token: tok })
    check('restore_keys: null accepted', nullRk.status === 200 && nullRk.json?.ok === false, nullRk.text)

    const blobKey = 'buildkit-blob-1-sha256:0123abcd'
    const c1 = await twirp(double.url, 'CreateCacheEntry', { key: blobKey, version: goVersion }, { token: tok })
    check(
      'CreateCacheEntry → {ok, signed_upload_url (write SAS, via the proxy), message}',
      c1.status === 200 &&
        c1.json?.ok === true &&
        c1.json.signed_upload_url.startsWith(`${double.origin}/devstoreaccount1/`) &&
        /[?&]sp=cw(&|$)/.test(c1.json.signed_upload_url) &&
        c1.json.message === '',
      c1.text
    )
    const early = await twirp(double.url, 'FinalizeCacheEntryUpload', { key: blobKey, size_bytes: 10, version: goVersion }, { token: tok })
    check('Finalize before the blob exists → 404 not_found', early.status === 404 && early.json?.code === 'not_found', early.text)
    const c2 = await twirp(double.url, 'CreateCacheEntry', { key: blobKey, version: goVersion }, { token: tok })
    check(
      'Create of a reserved (unfinalized) key → 409 {"code":"already_exists","msg":...}',
      c2.status === 409 && c2.json?.code === 'already_exists' && c2.json.msg === ALREADY_EXISTS_MESSAGE,
      c2.text
    )
    const payload = crypto.randomBytes(300 * 1024 + 17)
    const bb = new BlockBlobClient(c1.json.signed_upload_url, undefined, { retryOptions: { maxTries: 1 } })
    await bb.uploadData(payload, { blockSize: 64 * 1024, maxSingleShotSize: 64 * 1024, concurrency: 3 })
    const blocks = double.requests.filter((r) => r.kind === 'blob' && r.key === blobKey)
    check(
      'block upload: put-block ×5 then put-block-list, all 201',
      blocks.filter((r) => r.op === 'put-block' && r.status === 201).length === 5 && blocks.at(-1)?.op === 'put-block-list' && blocks.at(-1).status === 201,
      blocks.map((r) => `${r.op}:${r.status}`)
    )
    const fin = await twirp(double.url, 'FinalizeCacheEntryUpload', { key: blobKey, size_bytes: payload.length, version: goVersion }, { token: tok })
    check(
      'Finalize with size_bytes as a JSON number → {ok, entry_id as string}',
      fin.status === 200 && fin.json?.ok === true && /^\d+$/.test(fin.json.entry_id),
      fin.text
    )
    const fin2 = await twirp(double.url, 'FinalizeCacheEntryUpload', { key: blobKey, size_bytes: String(payload.length), version: goVersion }, { token: tok })
    check('Finalize again is idempotent (same entry_id)', fin2.json?.ok === true && fin2.json.entry_id === fin.json?.entry_id, fin2.text)
    const got = await twirp(double.url, 'GetCacheEntryDownloadURL', { key: blobKey, restore_keys: [blobKey], version: goVersion }, { token: tok })
    check(
      'lookup with restore_keys = [key] (BuildKit) → hit, read SAS',
      got.json?.ok === true && got.json.matched_key === blobKey && /[?&]sp=r(&|$)/.test(got.json.signed_download_url),
      got.text
    )
    const whole = await new BlobClient(got.json.signed_download_url).downloadToBuffer()
    check('Azure SDK download of the whole blob', sha(whole) === sha(payload))
    const tail = await new BlobClient(got.json.signed_download_url).download(300 * 1024)
    const tailBuf = await new Promise((resolve, reject) => {
      const chunks = []
      tail.readableStreamBody.on('data', (c) => chunks.push(c))
      tail.readableStreamBody.on('end', () => resolve(Buffer.concat(chunks)))
      tail.readableStreamBody.on('error', reject)
    })
    const tailRec = double.requests.filter((r) => r.kind === 'blob' && r.op === 'download').at(-1)
    check(
      'ranged download (x-ms-range bytes=N-, like DownloadStream)',
      sha(tailBuf) === sha(payload.subarray(300 * 1024)) && tailRec.status === 206 && /bytes=307200-/.test(tailRec.range ?? ''),
      tailRec
    )
    const rd = await fetch(got.json.signed_download_url, { method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob', 'Content-Length': '1' }, body: 'x' })
    check('read SAS cannot write (403)', rd.status === 403, rd.status)
    const wr = await fetch(c1.json.signed_upload_url)
    check('write SAS cannot read (403)', wr.status === 403, wr.status)
    const tampered = got.json.signed_download_url.replace(/sig=[^&]+/, 'sig=AAAA')
    check('tampered signature → 403', (await fetch(tampered)).status === 403)
    const unsigned = got.json.signed_download_url.split('?')[0]
    check('unsigned blob URL refused', (await fetch(unsigned)).status >= 400)
    const mut1 = await twirp(double.url, 'CreateCacheEntry', { key: 'index-x#1', version: goVersion }, { token: tok })
    await new BlockBlobClient(mut1.json.signed_upload_url).upload('i1', 2)
    await twirp(double.url, 'FinalizeCacheEntryUpload', { key: 'index-x#1', size_bytes: 2, version: goVersion }, { token: tok })
    const mut2 = await twirp(double.url, 'CreateCacheEntry', { key: 'index-x#2', version: goVersion }, { token: tok })
    await new BlockBlobClient(mut2.json.signed_upload_url).upload('i2', 2)
    await twirp(double.url, 'FinalizeCacheEntryUpload', { key: 'index-x#2', size_bytes: 2, version: goVersion }, { token: tok })
    const idx = await twirp(double.url, 'GetCacheEntryDownloadURL', { key: 'index-x#', restore_keys: ['index-x#'], version: goVersion }, { token: tok })
    check('SaveMutable: lookup "index-x#" → newest index-x#2', idx.json?.matched_key === 'index-x#2', idx.text)

    // Twirp envelope
    const getRoute = await twirp(double.url, 'CreateCacheEntry', undefined, { token: tok, httpMethod: 'GET' })
    check(
      'GET → 404 bad_route "unsupported method"',
      getRoute.status === 404 && getRoute.json?.code === 'bad_route' && /unsupported method "GET"/.test(getRoute.json.msg),
      getRoute.text
    )
    const unknown = await twirp(double.url, 'DeleteCacheEntry', { key: 'x' }, { token: tok })
    check(
      'unknown method → 404 bad_route "no handler for path" + meta.twirp_invalid_route',
      unknown.status === 404 &&
        unknown.json?.code === 'bad_route' &&
        unknown.json.msg === `no handler for path "/twirp/${SERVICE}/DeleteCacheEntry"` &&
        unknown.json.meta?.twirp_invalid_route === `POST /twirp/${SERVICE}/DeleteCacheEntry`,
      unknown.text
    )
    const otherSvc = await fetch(`${double.url}twirp/github.actions.results.api.v1.ArtifactService/CreateArtifact`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${tok}` },
      body: '{}'
    })
    check('other service → 404 bad_route', otherSvc.status === 404 && (await otherSvc.json()).code === 'bad_route')
    const badCt = await twirp(double.url, 'CreateCacheEntry', { key: 'x', version: 'y' }, { token: tok, contentType: 'text/plain' })
    check(
      'wrong Content-Type → 404 bad_route',
      badCt.status === 404 && badCt.json?.code === 'bad_route' && /unexpected Content-Type/.test(badCt.json.msg),
      badCt.text
    )
    const malformed = await twirp(double.url, 'CreateCacheEntry', undefined, { token: tok, raw: '{not json' })
    check('malformed JSON → 400 malformed', malformed.status === 400 && malformed.json?.code === 'malformed', malformed.text)
    const noVersion = await twirp(double.url, 'CreateCacheEntry', { key: 'x' }, { token: tok })
    check('missing version → 400 invalid_argument', noVersion.status === 400 && noVersion.json?.code === 'invalid_argument', noVersion.text)
    const noTok = await twirp(double.url, 'GetCacheEntryDownloadURL', { key: keyA, version: createA.version })
    check('no bearer token → 401 unauthenticated', noTok.status === 401 && noTok.json?.code === 'unauthenticated', noTok.text)
    const junkTok = await twirp(double.url, 'GetCacheEntryDownloadURL', { key: keyA, version: createA.version }, { token: 'a.b.c' })
    check('forged token → 401', junkTok.status === 401, junkTok.text)
    const expired = await twirp(
      double.url,
      'GetCacheEntryDownloadURL',
      { key: keyA, version: createA.version },
      { token: mintRuntimeToken({ ttlSeconds: -3600 }) }
    )
    check('expired token → 401', expired.status === 401 && /expired/.test(expired.json?.msg ?? ''), expired.text)

    // scopes from the token's ac claim
    const feature = mintRuntimeToken({
      scopes: [
        { Scope: 'refs/heads/feature', Permission: 3 },
        { Scope: 'refs/heads/main', Permission: 1 }
      ]
    })
    const fromMain = await twirp(double.url, 'GetCacheEntryDownloadURL', { key: keyA, version: createA.version }, { token: feature })
    check('feature-branch token reads the default branch entry', fromMain.json?.ok === true && fromMain.json.matched_key === keyA, fromMain.text)
    const fc = await twirp(double.url, 'CreateCacheEntry', { key: keyA, version: createA.version }, { token: feature })
    check('same key + version in another scope is a new entry', fc.json?.ok === true, fc.text)
    await new BlockBlobClient(fc.json.signed_upload_url).upload('feature', 7)
    await twirp(double.url, 'FinalizeCacheEntryUpload', { key: keyA, size_bytes: 7, version: createA.version }, { token: feature })
    const fromFeature = await twirp(double.url, 'GetCacheEntryDownloadURL', { key: keyA, version: createA.version }, { token: feature })
    const featureBytes = fromFeature.json?.ok ? Buffer.from(await (await fetch(fromFeature.json.signed_download_url)).arrayBuffer()).toString() : ''
    check('own scope first: the feature token gets its own entry', featureBytes === 'feature', featureBytes)
    const mainStill = await twirp(double.url, 'GetCacheEntryDownloadURL', { key: keyA, version: createA.version }, { token: tok })
    const mainEntry = double.entries().find((e) => e.key === keyA && e.scope === 'refs/heads/main')
    check(
      'the main token does not see the feature entry',
      mainStill.json?.ok === true && double.requests.at(-1).entryId === mainEntry?.id,
      double.requests.at(-1)
    )
    const readOnly = mintRuntimeToken({ permission: 1 })
    const denied = await twirp(double.url, 'CreateCacheEntry', { key: 'ro', version: goVersion }, { token: readOnly })
    check(
      'read-only token: Create → ok:false, "cache write denied: ..."',
      denied.status === 200 && denied.json?.ok === false && denied.json.message.startsWith('cache write denied:'),
      denied.text
    )
    const writeOnly = mintRuntimeToken({ permission: 2 })
    const rdenied = await twirp(double.url, 'GetCacheEntryDownloadURL', { key: keyA, version: createA.version }, { token: writeOnly })
    check(
      'token without read scope: lookup → 403 permission_denied "cache read denied: ..."',
      rdenied.status === 403 && rdenied.json?.code === 'permission_denied' && rdenied.json.msg.startsWith('cache read denied:'),
      rdenied.text
    )

    // legacy v1 paths, raw
    const v1get = await fetch(`${double.url}_apis/artifactcache/cache?keys=a&version=b`, {
      headers: { Authorization: `Bearer ${tok}`, Accept: 'application/json;api-version=6.0-preview.1' }
    })
    const v1body = await v1get.json()
    check(
      'v1 GET cache → 422 ArtifactCacheServiceDecommissionedException',
      v1get.status === 422 && v1body.typeKey === 'ArtifactCacheServiceDecommissionedException' && v1body.message === LEGACY_MESSAGE,
      v1body
    )
    const v1post = await fetch(`${double.url}_apis/artifactcache/caches`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tok}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ key: 'a', version: 'b' })
    })
    check(
      'v1 POST caches → 422 "This legacy service is shutting down"',
      v1post.status === 422 && (await v1post.json()).message.startsWith('This legacy service is shutting down')
    )
    check('unknown path → 404', (await fetch(`${double.url}nothing`)).status === 404)

    // admin endpoints
    const setFault = await fetch(`${double.origin}/__double/faults`, {
      method: 'POST',
      body: JSON.stringify({ ...bgFaults, api: [...bgFaults.api, { status: 503, count: 1, methods: ['GetCacheEntryDownloadURL'], keyRegex: '^admin-' }] })
    })
    const faultView = await setFault.json()
    const viaAdmin = await twirp(double.url, 'GetCacheEntryDownloadURL', { key: 'admin-x', version: goVersion }, { token: tok })
    const viaAdmin2 = await twirp(double.url, 'GetCacheEntryDownloadURL', { key: 'admin-x', version: goVersion }, { token: tok })
    check(
      'POST /__double/faults at runtime: one 503 unavailable, then normal',
      setFault.status === 200 &&
        faultView.api.at(-1)?.keyRegex === '^admin-' &&
        viaAdmin.status === 503 &&
        viaAdmin.json?.code === 'unavailable' &&
        viaAdmin2.status === 200,
      [viaAdmin.text, viaAdmin2.status]
    )
    withBg({
      seed: 7,
      api: [
        { status: 503, rate: 0.5, methods: ['GetCacheEntryDownloadURL'], keyRegex: '^rate-' },
        { reset: true, count: 1, keyRegex: '^reset-' }
      ]
    })
    const statuses = []
    for (let i = 0; i < 40; i++)
      statuses.push((await twirp(double.url, 'GetCacheEntryDownloadURL', { key: 'rate-x', version: goVersion }, { token: tok })).status)
    const n503 = statuses.filter((s) => s === 503).length
    check('rate 0.5 (seeded): about half the requests faulted', n503 >= 10 && n503 <= 30 && statuses.every((s) => s === 503 || s === 200), n503)
    let resetErr
    try {
      await twirp(double.url, 'CreateCacheEntry', { key: 'reset-x', version: goVersion }, { token: tok })
    } catch (err) {
      resetErr = err
    }
    check(
      'reset: the connection is dropped without an answer',
      resetErr !== undefined && double.requests.some((r) => r.key === 'reset-x' && r.fault === 'reset' && r.aborted),
      String(resetErr)
    )
    withBg({ api: { status: 503, count: 1, methods: ['GetCacheEntryDownloadURL'], keyRegex: '^admin-' } })
    await twirp(double.url, 'GetCacheEntryDownloadURL', { key: 'admin-x', version: goVersion }, { token: tok })
    const getFaults = await (await fetch(`${double.origin}/__double/faults`)).json()
    check(
      'GET /__double/faults shows counts used',
      getFaults.api.at(-1)?.used === 1 && getFaults.api.at(-1).count === 1 && getFaults.blob[0]?.count === null,
      getFaults
    )
    const logView = await (await fetch(`${double.origin}/__double/requests`)).json()
    const sumView = await (await fetch(`${double.origin}/__double/summary`)).json()
    check(
      'GET /__double/requests and /summary (admin calls are not logged)',
      logView.length > 0 &&
        logView.length <= double.requests.length &&
        !logView.some((r) => r.path.startsWith('/__double/')) &&
        sumView.counts.requests >= logView.length &&
        sumView.keysRead.includes(keyA),
      { log: logView.length }
    )
    check(
      'summary: every key read, every key written',
      sumView.keysRead.includes('selfcheck-v2-linux-') && sumView.keysWritten.includes(blobKey) && !sumView.keysWritten.includes('ro'),
      sumView.keysWritten
    )
    const entriesView = await (await fetch(`${double.origin}/__double/entries`)).json()
    check(
      'GET /__double/entries',
      entriesView.some((e) => e.key === blobKey && e.finalized && e.blobSize === payload.length)
    )

    // --- the real client's policy denials: the background save read the env when it started
    // (its CreateCacheEntry is long done), so the env is ours alone now
    check(
      'background save reserved its entry before the env changes',
      double.requests.some((r) => r.method === 'CreateCacheEntry' && r.key === 'selfcheck-v2-blob503always' && r.ok)
    )
    withBg()
    process.env.ACTIONS_RUNTIME_TOKEN = readOnly
    mark = coreLines.length
    const roSave = await cache.saveCache(paths, 'selfcheck-v2-readonly')
    check(
      '@actions/cache with a read-only token: save → -1, warns "cache write denied"',
      roSave === -1 && coreSince(mark).some((l) => l.startsWith('::warning::') && l.includes('cache write denied')),
      coreSince(mark)
    )
    process.env.ACTIONS_RUNTIME_TOKEN = writeOnly
    mark = coreLines.length
    const woRestore = await cache.restoreCache(paths, keyA)
    check(
      '@actions/cache without read scope: restore → undefined, warns "cache read denied"',
      woRestore === undefined && coreSince(mark).some((l) => l.startsWith('::warning::') && l.includes('cache read denied')),
      coreSince(mark)
    )
    process.env.ACTIONS_RUNTIME_TOKEN = double.token

    // --- a v1-only client (no ACTIONS_CACHE_SERVICE_V2) is refused like the real service refuses it
    for (const k of Object.keys(env)) delete process.env[k]
    Object.assign(process.env, double.legacyEnv())
    mark = coreLines.length
    const before = double.requests.length
    const v1Restore = await cache.restoreCache(paths, keyA)
    const v1Save = await cache.saveCache(paths, 'selfcheck-v2-v1client')
    const v1Recs = double.requests.slice(before).filter((r) => r.key !== 'selfcheck-v2-blob503always')
    const v1Out = coreSince(mark).join('\n')
    check(
      'v1 client: restore → undefined, "Cache service responded with 422"',
      v1Restore === undefined && /Cache service responded with 422/.test(v1Out),
      v1Out
    )
    check('v1 client: save → -1, "This legacy service is shutting down"', v1Save === -1 && v1Out.includes('This legacy service is shutting down'), v1Out)
    check(
      'v1 client: only legacy paths hit, all 422, nothing stored',
      v1Recs.length > 0 && v1Recs.every((r) => r.kind === 'legacy' && r.status === 422) && !double.entries().some((e) => e.key === 'selfcheck-v2-v1client'),
      v1Recs.map((r) => `${r.httpMethod} ${r.path} ${r.status}`)
    )
    // --- background results
    const results = Object.fromEntries((await Promise.all(bg.splice(0))).map((r) => [r.name, r]))
    const b503 = double.requests.filter((r) => r.kind === 'blob' && r.key === 'selfcheck-v2-blob503always')
    check('blob 503 always: saveCache → -1', results.blob503.r === -1, results.blob503)
    check(
      'blob 503 always: the SDK tried 4 times, all answered 503 ServerBusy, nothing finalized',
      b503.length === 4 && b503.every((r) => r.status === 503 && r.fault === 503) && !double.summarize().keysCommitted.includes('selfcheck-v2-blob503always'),
      b503.map((r) => r.status)
    )
    check(
      'blob 503 always: the client warns',
      coreLines.some((l) => l.startsWith('::warning::') && l.includes('uploadCacheArchiveSDK') && l.includes('unable to receive requests')),
      coreLines.filter((l) => l.startsWith('::warning::'))
    )
  } finally {
    await Promise.allSettled(bg)
    const azPid = double.azurite.pid
    const dir = double.storageDir
    await double.close()
    check('close(): azurite stopped', await goneWithin(azPid, 3000), azPid)
    check('close(): storage dir removed', !fs.existsSync(dir), dir)
    await fsp.rm(tmp, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// (b) CLI

const spawnCli = (args) => spawnDoubleCli('cache-v2-double.mjs', args, { onSpawn: (pid) => startedPids.push(pid) })

async function cliChecks() {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'selfcheck-cache-v2-cli-'))
  const stateFile = path.join(tmp, 'state.json')
  const logFile = path.join(tmp, 'requests.jsonl')
  const c = spawnCli([
    '--state-file',
    stateFile,
    '--log-file',
    logFile,
    '--entries-per-minute',
    '2',
    '--api-fault',
    JSON.stringify({ status: 503, count: 1, methods: ['GetCacheEntryDownloadURL'] }),
    '--scope',
    'refs/heads/cli'
  ])
  let info
  try {
    info = await c.first
    startedPids.push(info.azuritePid)
    check(
      'CLI prints {url, token, pid, azuritePid, env, controlUrl}',
      /^http:\/\/127\.0\.0\.1:\d+\/$/.test(info.url) &&
        info.pid === c.child.pid &&
        alive(info.azuritePid) &&
        info.env.ACTIONS_CACHE_SERVICE_V2 === 'True' &&
        info.env.ACTIONS_RESULTS_URL === info.url &&
        info.controlUrl === `${info.url}__double/`,
      info
    )
    check('CLI writes --state-file', JSON.parse(await fsp.readFile(stateFile, 'utf8')).azuritePid === info.azuritePid)
    const l1 = await twirp(info.url, 'GetCacheEntryDownloadURL', { key: 'k', version: 'v' }, { token: info.token })
    const l2 = await twirp(info.url, 'GetCacheEntryDownloadURL', { key: 'k', version: 'v' }, { token: info.token })
    check('--api-fault applies (one 503, then a miss)', l1.status === 503 && l1.json?.code === 'unavailable' && l2.status === 200 && l2.json?.ok === false, [
      l1.text,
      l2.text
    ])
    const cr = []
    for (const k of ['e1', 'e2', 'e3']) cr.push(await twirp(info.url, 'CreateCacheEntry', { key: k, version: 'v' }, { token: info.token }))
    check(
      '--entries-per-minute 2: third create → 429 resource_exhausted + Retry-After',
      cr[0].json?.ok && cr[1].json?.ok && cr[2].status === 429 && cr[2].json?.code === 'resource_exhausted' && Number(cr[2].headers.get('retry-after')) >= 1,
      cr.map((r) => r.text)
    )
    const scoped = await (await fetch(`${info.controlUrl}entries`)).json()
    check('--scope: entries written to refs/heads/cli', scoped.length === 2 && scoped.every((e) => e.scope === 'refs/heads/cli'), scoped)
    await fetch(`${info.controlUrl}faults`, { method: 'POST', body: JSON.stringify({ api: { status: 429, retryAfter: 2, count: 1 } }) })
    const rl = await twirp(info.url, 'GetCacheEntryDownloadURL', { key: 'k', version: 'v' }, { token: info.token })
    check('runtime faults via the control URL', rl.status === 429 && rl.headers.get('retry-after') === '2', rl.text)
    await sleep(100)
    const lines = (await fsp.readFile(logFile, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    check(
      '--log-file: one JSON line per request with method, key, status',
      lines.length === 6 && lines[0].method === 'GetCacheEntryDownloadURL' && lines[0].status === 503 && lines[0].key === 'k' && lines.at(-1).status === 429,
      lines.map((l) => `${l.method}:${l.status}`)
    )
    const errLines = c
      .stderr()
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
    check('stderr: the same log as JSON lines', errLines.length === lines.length && errLines[3].method === 'CreateCacheEntry')
    await fetch(`${info.controlUrl}clear`, { method: 'POST' })
    check('POST /__double/clear empties the log', (await (await fetch(`${info.controlUrl}requests`)).json()).length === 0)
  } finally {
    c.child.kill('SIGTERM')
    const ex = await c.exited
    check('CLI stops on SIGTERM (exit 0)', ex.code === 0, ex)
    if (info) {
      check('CLI stop also stops its azurite', await goneWithin(info.azuritePid, 3000), info.azuritePid)
      check('CLI removes its state file and storage dir', !fs.existsSync(stateFile) && !fs.existsSync(info.storageDir))
    }
    await fsp.rm(tmp, { recursive: true, force: true })
  }
  const bad = spawnCli(['--legacy', 'bogus'])
  const badEx = await bad.exited
  check('CLI rejects a bad --legacy (exit 1)', badEx.code === 1 && /--legacy/.test(bad.stderr()), bad.stderr())
}

// ---------------------------------------------------------------------------------------------

const t0 = Date.now()
let stopping = false
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    if (stopping) return
    stopping = true
    // the exit hook of cache-v2-double.mjs kills every Azurite child it started
    for (const pid of startedPids) {
      try {
        process.kill(pid, 'SIGTERM')
      } catch {
        /* gone */
      }
    }
    process.exit(130)
  })
}
const parts = []
// the CLI part runs its own processes: run it beside the in-process part
if (!only || only === 'cli') parts.push(section('CLI', cliChecks))
if (!only || only === 'double') parts.push(section('cache v2 double (+ real @actions/cache)', doubleChecks))
await Promise.all(parts)
realStdoutWrite(`pids: ${JSON.stringify(startedPids)}\n`)
process.exit(summary(t0, realStdoutWrite))
