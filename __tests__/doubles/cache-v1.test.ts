import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import * as cache from '@actions/cache'
import { mintRuntimeToken, startCacheDouble } from '../e2e/support/cache-double.mjs'
import { captureStdout, dataSha, runnerEnv, sha, tmpDir, writeData } from './kit.js'

/**
 * The double of the cache service v1 (cache-double.mjs) against the real @actions/cache client on
 * its v1 path (as on GHES) and the raw requests of go-actions-cache (BuildKit type=gha before v2).
 */
let double: Awaited<ReturnType<typeof startCacheDouble>>
const dir = tmpDir()
const data = path.join(dir, 'data')
const goVersion = sha('|go-actionscache-1.0')
const stdout = captureStdout()

beforeAll(async () => {
  double = await startCacheDouble()
  runnerEnv({ ACTIONS_CACHE_URL: double.url, ACTIONS_RUNTIME_TOKEN: double.token }, path.join(dir, 'runner-temp'))
})
afterAll(async () => {
  stdout.restore()
  await double.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

function api(route: string, { token = double.token, ...init }: RequestInit & { token?: string } = {}) {
  return fetch(`${double.url}_apis/artifactcache/${route}`, {
    ...init,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...(init.headers as Record<string, string>) }
  })
}
const reserve = (key: string, token?: string) => api('caches', { method: 'POST', body: JSON.stringify({ key, version: goVersion }), token })
const lookup = (key: string, token?: string) => api(`cache?keys=${encodeURIComponent(key)}&version=${goVersion}`, { token })
const patch = (id: number, bytes: Buffer, start: number) =>
  api(`caches/${id}`, { method: 'PATCH', headers: { 'Content-Range': `bytes ${start}-${start + bytes.length - 1}/*` }, body: new Uint8Array(bytes) })
const commit = (id: number, size: number) => api(`caches/${id}`, { method: 'POST', body: JSON.stringify({ size }) })

describe('cache service v1 double', () => {
  let shaA = ''
  it('@actions/cache saves in chunks (reserve, PATCH with Content-Range, commit) into the scope of its token', async () => {
    shaA = writeData(data)
    const id = await cache.saveCache([data], 'v1-linux-aaa', { uploadChunkSize: 64 * 1024, uploadConcurrency: 4 })
    expect(id).toBeGreaterThan(0)
    expect(double.requests.filter((r: any) => r.method === 'PATCH' && r.cacheId === id && r.status === 204).length).toBeGreaterThan(1)
    expect(double.entries().find((e: any) => e.id === id)).toMatchObject({ key: 'v1-linux-aaa', scope: 'refs/heads/main', committed: true })
    // what flow.test.ts reads of a save: the commit request with the entry's key
    expect(double.requests.some((r: any) => r.method === 'POST' && /caches\/\d+$/.test(r.path) && r.key === 'v1-linux-aaa' && r.status === 204)).toBe(true)
  })

  it('a reserve of a reserved key is a 409 whose typeKey names AlreadyExists: @actions/cache gives up (-1), go-actions-cache reads os.ErrExist', async () => {
    expect(await cache.saveCache([data], 'v1-linux-aaa')).toBe(-1)
    expect((await reserve('go-reserved')).status).toBe(201)
    const again = await reserve('go-reserved')
    expect(again.status).toBe(409)
    expect((await again.json()).typeKey).toMatch(/AlreadyExists/)
  })

  it('@actions/cache restores the exact key (HEAD, then ranged GETs of the archive, no auth); the log has the keys asked for', async () => {
    fs.rmSync(data, { recursive: true, force: true })
    expect(await cache.restoreCache([data], 'v1-linux-aaa')).toBe('v1-linux-aaa')
    expect(dataSha(data)).toBe(shaA)
    // what flow.test.ts reads of a lookup: the keys asked for, the status
    expect(double.requests.some((r: any) => r.method === 'GET' && r.query?.keys === 'v1-linux-aaa' && r.status === 200)).toBe(true)
  })

  it('restore keys match as prefixes, the newest entry first', async () => {
    const shaB = writeData(data)
    expect(await cache.saveCache([data], 'v1-linux-bbb')).toBeGreaterThan(0)
    fs.rmSync(data, { recursive: true, force: true })
    expect(await cache.restoreCache([data], 'v1-linux-zzz', ['v1-nope-', 'v1-linux-'])).toBe('v1-linux-bbb')
    expect(dataSha(data)).toBe(shaB)
  })

  it('a miss is a 204 with an empty body; the same key under another version (other paths) is a miss', async () => {
    expect(await cache.restoreCache([path.join(dir, 'elsewhere')], 'v1-linux-aaa')).toBeUndefined()
    const miss = await lookup('nothing-here')
    expect(miss.status).toBe(204)
    expect((await miss.arrayBuffer()).byteLength).toBe(0)
  })

  it('go-actions-cache: chunks in any order, visible once committed with the size they cover; Range: bytes=N- answers 206 + Content-Range', async () => {
    const bytes = crypto.randomBytes(10_000)
    const { cacheId } = await (await reserve('go-blob')).json()
    const patches = await Promise.all([patch(cacheId, bytes.subarray(5000), 5000), patch(cacheId, bytes.subarray(0, 5000), 0)])
    expect(patches.map((r) => r.status)).toEqual([204, 204])
    expect((await lookup('go-blob')).status).toBe(204)
    expect((await commit(cacheId, 12_345)).status).toBe(400)
    expect((await commit(cacheId, bytes.length)).status).toBe(204)
    const hit = await (await lookup('go-blob')).json()
    expect(hit).toMatchObject({ cacheKey: 'go-blob', scope: 'refs/heads/main' })
    const tail = await fetch(hit.archiveLocation, { headers: { Range: 'bytes=9000-' } })
    expect([tail.status, tail.headers.get('content-range')]).toEqual([206, 'bytes 9000-9999/10000'])
    expect(sha(Buffer.from(await tail.arrayBuffer()))).toBe(sha(bytes.subarray(9000)))
    expect((await fetch(hit.archiveLocation, { headers: { Range: 'bytes=10000-' } })).status).toBe(416)
    // an empty entry (no chunk at all) commits and downloads
    const empty = (await (await reserve('go-empty')).json()).cacheId
    expect((await commit(empty, 0)).status).toBe(204)
    const got = await fetch((await (await lookup('go-empty')).json()).archiveLocation)
    expect([got.status, (await got.arrayBuffer()).byteLength]).toEqual([200, 0])
  })

  it("scopes: a pull request's token reads main and writes its own scope; another branch sees nothing; a read-only token cannot write", async () => {
    const pr = mintRuntimeToken({
      scopes: [
        { Scope: 'refs/pull/7/merge', Permission: 3 },
        { Scope: 'refs/heads/main', Permission: 1 }
      ]
    })
    expect((await (await lookup('go-blob', pr)).json()).scope).toBe('refs/heads/main')
    expect((await reserve('go-blob', pr)).status).toBe(201)
    expect((await lookup('go-blob', mintRuntimeToken({ scope: 'refs/heads/other' }))).status).toBe(204)
    const readOnly = mintRuntimeToken({ permission: 1 })
    const denied = await reserve('go-ro', readOnly)
    expect([denied.status, (await denied.json()).message]).toEqual([403, expect.stringMatching(/^cache write denied:/)])
    // the real client with that token: gives up on the save with the service's own words
    process.env.ACTIONS_RUNTIME_TOKEN = readOnly
    try {
      const mark = stdout.lines.length
      expect(await cache.saveCache([data], 'v1-readonly')).toBe(-1)
      expect(stdout.since(mark)).toMatch(/^::warning::.*cache write denied/m)
    } finally {
      process.env.ACTIONS_RUNTIME_TOKEN = double.token
    }
  })

  it('a missing, forged or expired token is refused (401)', async () => {
    const statuses = [
      (await fetch(`${double.url}_apis/artifactcache/cache?keys=a&version=b`)).status,
      (await lookup('go-blob', `${double.token.slice(0, -4)}AAAA`)).status,
      (await lookup('go-blob', mintRuntimeToken({ ttlSeconds: -60 }))).status
    ]
    expect(statuses).toEqual([401, 401, 401])
  })
})
