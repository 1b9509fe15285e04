import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import * as cache from '@actions/cache'
import { BlobClient, BlockBlobClient } from '@azure/storage-blob'
import { mintRuntimeToken } from '../e2e/support/cache-double.mjs'
import { ALREADY_EXISTS_MESSAGE, ENTRIES_PER_MINUTE, LEGACY_MESSAGE, SERVICE, startCacheV2Double } from '../e2e/support/cache-v2-double.mjs'
import { captureStdout, dataSha, runnerEnv, sha, tmpDir, writeData } from './kit.js'

/**
 * The double of the cache service v2 (cache-v2-double.mjs: Twirp API, Azurite behind signed URLs)
 * against the real @actions/cache client, the Azure SDK, and the raw requests of go-actions-cache
 * (BuildKit type=gha,version=2).
 */
let double: Awaited<ReturnType<typeof startCacheV2Double>>
const dir = tmpDir()
const data = path.join(dir, 'data')
const goVersion = sha('|go-actionscache-1.0')
const stdout = captureStdout()
const v2Env = () => ({ ACTIONS_RESULTS_URL: double.url, ACTIONS_RUNTIME_TOKEN: double.token, ACTIONS_CACHE_SERVICE_V2: 'True' })
const alive = (pid: number) => {
  try {
    return process.kill(pid, 0)
  } catch {
    return false
  }
}

beforeAll(async () => {
  double = await startCacheV2Double()
  runnerEnv(v2Env(), path.join(dir, 'runner-temp'))
})
afterAll(async () => {
  stdout.restore()
  await double.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

async function twirp(method: string, body: unknown, token: string | null = double.token, init: RequestInit = {}) {
  const res = await fetch(`${double.url}twirp/${SERVICE}/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
    ...init
  })
  const text = await res.text() // every Twirp answer is JSON
  return { status: res.status, headers: res.headers, text, json: JSON.parse(text) }
}
const api = (method: string) => double.requests.filter((r: any) => r.kind === 'api' && r.method === method)
const blobs = (key: string) => double.requests.filter((r: any) => r.kind === 'blob' && r.key === key)

describe('cache service v2 double', () => {
  let shaA = ''
  it('@actions/cache saves: CreateCacheEntry, one Put Blob through the blob proxy, FinalizeCacheEntryUpload with size_bytes as a string', async () => {
    shaA = writeData(data)
    const id = await cache.saveCache([data], 'v2-linux-aaa')
    expect(id).toBeGreaterThan(0)
    expect(api('CreateCacheEntry').at(-1)).toMatchObject({
      key: 'v2-linux-aaa',
      ok: true,
      scope: 'refs/heads/main',
      version: expect.stringMatching(/^[0-9a-f]{64}$/)
    })
    const up = blobs('v2-linux-aaa')
    expect(up.map((r: any) => `${r.op} ${r.status}`)).toEqual(['put-blob 201'])
    expect(api('FinalizeCacheEntryUpload').at(-1)).toMatchObject({ ok: true, entryId: id, sizeBytes: up[0].bytes, blobSize: up[0].bytes })
    expect(double.summarize().keysCommitted).toEqual(['v2-linux-aaa'])
  })

  it('@actions/cache restores the exact key with plain GETs of the signed URL; the log has the download and its timings', async () => {
    fs.rmSync(data, { recursive: true, force: true })
    double.clearLog()
    expect(await cache.restoreCache([data], 'v2-linux-aaa')).toBe('v2-linux-aaa')
    expect(dataSha(data)).toBe(shaA)
    const s = double.summarize()
    expect([s.keysRead, s.keysHit, s.counts.hits]).toEqual([['v2-linux-aaa'], ['v2-linux-aaa'], 1])
    const download = blobs('v2-linux-aaa').find((r: any) => r.op === 'download')
    expect(download).toMatchObject({ status: expect.any(Number), bytes: expect.any(Number) })
    expect(download.bytes).toBeGreaterThan(0)
    expect(download.headMs).toBeLessThanOrEqual(download.ms)
  })

  it('restore keys match as prefixes, the newest entry first; the primary key matches as a prefix too', async () => {
    const shaB = writeData(data)
    expect(await cache.saveCache([data], 'v2-linux-bbb')).toBeGreaterThan(0)
    fs.rmSync(data, { recursive: true, force: true })
    expect(await cache.restoreCache([data], 'v2-linux-zzz', ['v2-nope-', 'v2-linux-'])).toBe('v2-linux-bbb')
    expect(dataSha(data)).toBe(shaB)
    expect(api('GetCacheEntryDownloadURL').at(-1).restoreKeys).toEqual(['v2-nope-', 'v2-linux-'])
    expect(await cache.restoreCache([data], 'v2-linux-a', [], { lookupOnly: true })).toBe('v2-linux-aaa')
  })

  it('a miss is ok:false with empty fields (HTTP 200); the same key under another version (other paths) is a miss', async () => {
    expect(await cache.restoreCache([path.join(dir, 'elsewhere')], 'v2-linux-aaa')).toBeUndefined()
    const miss = await twirp('GetCacheEntryDownloadURL', { key: 'nothing', restore_keys: null, version: goVersion })
    expect([miss.status, miss.text]).toEqual([200, '{"ok":false,"signed_download_url":"","matched_key":""}'])
  })

  it('a second Create of a key is 409 already_exists: @actions/cache gives up (-1), go-actions-cache reads os.ErrExist', async () => {
    writeData(data)
    expect(await cache.saveCache([data], 'v2-linux-aaa')).toBe(-1)
    expect((await twirp('CreateCacheEntry', { key: 'go-reserved', version: goVersion })).json.ok).toBe(true)
    const again = await twirp('CreateCacheEntry', { key: 'go-reserved', version: goVersion })
    expect([again.status, again.json]).toEqual([409, { code: 'already_exists', msg: ALREADY_EXISTS_MESSAGE }])
  })

  it('go-actions-cache: blocks and a block list up, Finalize with size_bytes as a number, restore_keys holding the key, x-ms-range: bytes=N- down', async () => {
    const key = 'buildkit-blob-1-sha256:0123abcd'
    const created = await twirp('CreateCacheEntry', { key, version: goVersion })
    expect(created.json).toMatchObject({ ok: true, message: '', signed_upload_url: expect.stringMatching(/[?&]sp=cw(&|$)/) })
    const early = await twirp('FinalizeCacheEntryUpload', { key, size_bytes: 10, version: goVersion })
    expect([early.status, early.json.code]).toEqual([404, 'not_found'])
    const bytes = crypto.randomBytes(300 * 1024 + 17)
    await new BlockBlobClient(created.json.signed_upload_url).uploadData(bytes, { blockSize: 64 * 1024, maxSingleShotSize: 64 * 1024, concurrency: 3 })
    expect(blobs(key).map((r: any) => `${r.op} ${r.status}`)).toEqual([...Array(5).fill('put-block 201'), 'put-block-list 201'])
    const done = await twirp('FinalizeCacheEntryUpload', { key, size_bytes: bytes.length, version: goVersion })
    expect(done.json).toEqual({ ok: true, entry_id: expect.stringMatching(/^\d+$/), message: '' })
    const found = await twirp('GetCacheEntryDownloadURL', { key, restore_keys: [key], version: goVersion })
    expect(found.json).toMatchObject({ ok: true, matched_key: key, signed_download_url: expect.stringMatching(/[?&]sp=r(&|$)/) })
    const tail = await new BlobClient(found.json.signed_download_url).downloadToBuffer(300 * 1024)
    expect(sha(tail)).toBe(sha(bytes.subarray(300 * 1024)))
    expect(blobs(key).at(-1)).toMatchObject({ op: 'download', status: 206, range: expect.stringMatching(/^bytes=307200-/) })
  })

  it('signed URLs: a read URL cannot write, a write URL cannot read, a tampered signature is refused', async () => {
    const created = await twirp('CreateCacheEntry', { key: 'sas', version: goVersion })
    await new BlockBlobClient(created.json.signed_upload_url).upload('x', 1)
    await twirp('FinalizeCacheEntryUpload', { key: 'sas', size_bytes: '1', version: goVersion })
    const readUrl = (await twirp('GetCacheEntryDownloadURL', { key: 'sas', version: goVersion })).json.signed_download_url
    const statuses = [
      (await fetch(readUrl, { method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob' }, body: 'y' })).status,
      (await fetch(created.json.signed_upload_url)).status,
      (await fetch(readUrl.replace(/sig=[^&]+/, 'sig=AAAA'))).status,
      (await fetch(readUrl)).status
    ]
    expect(statuses).toEqual([403, 403, 403, 200])
  })

  it("scopes: a pull request's token reads main and its own scope first; main does not see it; denials in the words @actions/cache knows", async () => {
    const pr = mintRuntimeToken({
      scopes: [
        { Scope: 'refs/pull/7/merge', Permission: 3 },
        { Scope: 'refs/heads/main', Permission: 1 }
      ]
    })
    expect((await twirp('GetCacheEntryDownloadURL', { key: 'sas', version: goVersion }, pr)).json.ok).toBe(true)
    const own = await twirp('CreateCacheEntry', { key: 'sas', version: goVersion }, pr)
    await new BlockBlobClient(own.json.signed_upload_url).upload('pr', 2)
    await twirp('FinalizeCacheEntryUpload', { key: 'sas', size_bytes: 2, version: goVersion }, pr)
    const read = async (token: string) => {
      const url = (await twirp('GetCacheEntryDownloadURL', { key: 'sas', version: goVersion }, token)).json.signed_download_url
      return (await fetch(url)).text()
    }
    expect([await read(pr), await read(double.token)]).toEqual(['pr', 'x'])
    writeData(data, 1024)
    try {
      process.env.ACTIONS_RUNTIME_TOKEN = mintRuntimeToken({ permission: 1 })
      let mark = stdout.lines.length
      expect(await cache.saveCache([data], 'v2-readonly')).toBe(-1)
      expect(stdout.since(mark)).toMatch(/^::warning::.*cache write denied/m)
      process.env.ACTIONS_RUNTIME_TOKEN = mintRuntimeToken({ permission: 2 })
      mark = stdout.lines.length
      expect(await cache.restoreCache([data], 'v2-linux-aaa')).toBeUndefined()
      expect(stdout.since(mark)).toMatch(/^::warning::.*cache read denied/m)
    } finally {
      process.env.ACTIONS_RUNTIME_TOKEN = double.token
    }
  })

  it('Twirp: other routes are bad_route, a body that is not JSON malformed; a missing, forged or expired token unauthenticated', async () => {
    const codes = [
      await twirp('DeleteCacheEntry', {}),
      await twirp('CreateCacheEntry', undefined, double.token, { method: 'GET', body: undefined }),
      await twirp('CreateCacheEntry', {}, double.token, { body: '{not json' }),
      await twirp('CreateCacheEntry', { key: 'k', version: 'v' }, null),
      await twirp('CreateCacheEntry', { key: 'k', version: 'v' }, `${double.token.slice(0, -4)}AAAA`),
      await twirp('CreateCacheEntry', { key: 'k', version: 'v' }, mintRuntimeToken({ ttlSeconds: -60 }))
    ].map((r) => `${r.status} ${r.json?.code}`)
    expect(codes).toEqual(['404 bad_route', '404 bad_route', '400 malformed', '401 unauthenticated', '401 unauthenticated', '401 unauthenticated'])
  })

  it('a v1 client is refused with 422 "This legacy service is shutting down" (what the action detects in BuildKit\'s log)', async () => {
    runnerEnv({ ACTIONS_CACHE_URL: double.url, ACTIONS_RUNTIME_TOKEN: double.token }, path.join(dir, 'runner-temp'))
    const mark = stdout.lines.length
    try {
      expect(await cache.restoreCache([data], 'v2-linux-aaa')).toBeUndefined()
    } finally {
      runnerEnv(v2Env(), path.join(dir, 'runner-temp'))
    }
    expect(stdout.since(mark)).toMatch(/Cache service responded with 422/)
    const v1 = await fetch(`${double.url}_apis/artifactcache/caches`, { method: 'POST', body: '{}' })
    expect([v1.status, (await v1.json()).message]).toEqual([422, LEGACY_MESSAGE])
  })

  it('faults: an API fault is a Twirp error; a blob fault an Azure ServerBusy the SDK retries; neither is forwarded', async () => {
    const { signed_upload_url: url } = (await twirp('CreateCacheEntry', { key: 'faulted-blob', version: goVersion })).json
    double.configure({ api: { status: 500, methods: ['CreateCacheEntry'] }, blob: { methods: ['upload'] } })
    try {
      const failed = await twirp('CreateCacheEntry', { key: 'faulted', version: goVersion })
      expect([failed.status, failed.json.code]).toEqual([500, 'internal'])
      expect(double.entries().some((e: any) => e.key === 'faulted')).toBe(false)
      const retryOptions = { maxTries: 2, retryDelayInMs: 1, maxRetryDelayInMs: 1 }
      const err: any = await new BlockBlobClient(url, undefined, { retryOptions }).upload('z', 1).catch((e) => e)
      expect([err.statusCode, err.code]).toEqual([503, 'ServerBusy'])
      expect(blobs('faulted-blob').map((r: any) => `${r.op} ${r.status} ${r.fault}`)).toEqual(['put-blob 503 503', 'put-blob 503 503'])
    } finally {
      double.configure({})
    }
    // the faulted uploads never reached Azurite: there is no blob to finalize
    expect((await twirp('FinalizeCacheEntryUpload', { key: 'faulted-blob', size_bytes: 1, version: goVersion })).status).toBe(404)
  })

  it('a blob fault with keyPrefix fails the downloads of matching entries only (cached layers, not the cache manifest)', async () => {
    for (const key of ['buildkit-blob-1-sha256:aa', 'index-scope-1']) {
      const { signed_upload_url: url } = (await twirp('CreateCacheEntry', { key, version: goVersion })).json
      await new BlockBlobClient(url).upload('x', 1)
      expect((await twirp('FinalizeCacheEntryUpload', { key, size_bytes: 1, version: goVersion })).status).toBe(200)
    }
    double.configure({ blob: { status: 503, methods: ['download'], keyPrefix: 'buildkit-blob' } })
    try {
      const status = async (key: string) =>
        (await fetch((await twirp('GetCacheEntryDownloadURL', { key, version: goVersion })).json.signed_download_url)).status
      expect([await status('buildkit-blob-1-sha256:aa'), await status('index-scope-1')]).toEqual([503, 200])
    } finally {
      double.configure({})
    }
  })

  it(`creates at most ${ENTRIES_PER_MINUTE} entries a minute, then 429 resource_exhausted with Retry-After`, async () => {
    const token = mintRuntimeToken({ scope: 'refs/heads/busy' })
    let last: Awaited<ReturnType<typeof twirp>> | undefined
    for (let i = 0; i <= ENTRIES_PER_MINUTE && last?.status !== 429; i++)
      last = await twirp('CreateCacheEntry', { key: `busy-${i}`, version: goVersion }, token)
    expect([last?.status, last?.json.code]).toEqual([429, 'resource_exhausted'])
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
  })

  it('logFile gets every request as a JSON line; close() stops Azurite', async () => {
    const logFile = path.join(dir, 'requests.jsonl')
    const other = await startCacheV2Double({ logFile })
    await fetch(`${other.url}nothing`)
    await other.close()
    expect(
      fs
        .readFileSync(logFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).status)
    ).toEqual([404])
    expect(alive(Number(other.azurite.pid))).toBe(false)
  })
})
