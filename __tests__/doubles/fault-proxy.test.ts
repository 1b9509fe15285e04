import crypto from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { startFaultProxy } from '../e2e/support/fault-proxy.mjs'
import { sha } from './kit.js'

/**
 * The registry fault proxy (fault-proxy.mjs) in front of a small upstream that answers like a
 * registry and echoes what reached it, over real HTTP: one check per rule, then its command line.
 */
interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
  text: string
}

/** One request on a fresh connection (no keep-alive surprises); `chunked` streams the body without a length. */
function request(
  url: string,
  { method = 'GET', headers = {}, body, chunked = false }: { method?: string; headers?: Record<string, string>; body?: string | Buffer; chunked?: boolean } = {}
) {
  return new Promise<Answer>((resolve, reject) => {
    const h: Record<string, string> = {
      ...headers,
      ...(body === undefined ? {} : chunked ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': String(Buffer.byteLength(body)) })
    }
    const req = http.request(url, { method, headers: h, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), text: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    if (body !== undefined && chunked) for (let i = 0; i < body.length; i += 65536) req.write(Buffer.from(body).subarray(i, i + 65536))
    else if (body !== undefined) req.write(body)
    req.end()
  })
}

/** The upstream: manifests by tag, uploads that echo the body's digest, a big blob sent chunked. */
async function startUpstream() {
  const manifests = new Map<string, Buffer>()
  const seen: { path: string; host?: string }[] = []
  const big = crypto.randomBytes(3 * 1024 * 1024 + 17)
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c)
    const body = Buffer.concat(chunks)
    const u = new URL(req.url ?? '/', 'http://x')
    seen.push({ path: u.pathname, host: req.headers.host })
    const base = { 'Docker-Distribution-Api-Version': 'registry/2.0', 'X-Seen-Host': req.headers.host ?? '' }
    const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(u.pathname)
    if (u.pathname === '/v2/') return res.writeHead(200, base).end('{}')
    if (m && req.method === 'PUT') {
      manifests.set(`${m[1]}:${m[2]}`, body)
      return res.writeHead(201, { ...base, Location: `http://${req.headers.host}/v2/${m[1]}/manifests/sha256:${sha(body)}` }).end()
    }
    if (m && !manifests.has(`${m[1]}:${m[2]}`)) return res.writeHead(404, base).end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN' }] }))
    if (m) return res.writeHead(200, base).end(req.method === 'HEAD' ? undefined : manifests.get(`${m[1]}:${m[2]}`))
    if (req.method === 'POST' && u.pathname.endsWith('/blobs/uploads/')) {
      // an absolute Location pointing at the upstream itself, as a registry with http.host set sends
      const { port } = server.address() as AddressInfo
      return res.writeHead(202, { ...base, Location: `http://127.0.0.1:${port}${u.pathname}upload-1?_state=abc` }).end()
    }
    if (req.method === 'PATCH') return res.writeHead(202, { ...base, 'X-Body-Sha': sha(body), 'X-Body-Len': String(body.length) }).end()
    if (u.pathname.endsWith('/blobs/sha256:big') && req.method === 'HEAD') return res.writeHead(200, { ...base, 'Content-Length': String(big.length) }).end()
    if (u.pathname.endsWith('/blobs/sha256:big')) {
      res.writeHead(200, base) // no Content-Length: sent chunked
      for (let i = 0; i < big.length; i += 100_000) res.write(big.subarray(i, i + 100_000))
      return res.end()
    }
    res.writeHead(404, base).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, seen, big, close: () => new Promise<void>((resolve) => (server.close(() => resolve()), server.closeAllConnections())) }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
let up: Awaited<ReturnType<typeof startUpstream>>
let proxy: any
let P = ''
const fate = () => proxy.log.at(-1)?.fate
const M = (tag: string) => `${P}/v2/owner/app/manifests/${tag}`

beforeAll(async () => {
  up = await startUpstream()
  proxy = await startFaultProxy({ target: up.url, seed: 7 })
  P = proxy.url
})
afterAll(async () => {
  await proxy.close()
  await up.close()
})

describe('fault proxy', () => {
  it('forwards verbatim: the Host, bodies streamed both ways (chunked or not), the query; rewrites Locations to itself', async () => {
    const ping = await request(`${P}/v2/`)
    expect([ping.status, fate(), proxy.log.at(-1).status, ping.headers['x-seen-host']]).toEqual([200, 'forwarded', 200, proxy.host])
    const post = await request(`${P}/v2/owner/app/blobs/uploads/`, { method: 'POST', body: '' })
    expect(post.headers.location).toBe(`${P}/v2/owner/app/blobs/uploads/upload-1?_state=abc`)
    for (const [size, chunked] of [
      [5 * 1024 * 1024 + 3, true],
      [1024 * 1024, false]
    ] as const) {
      const payload = crypto.randomBytes(size)
      const r = await request(`${P}/v2/owner/app/blobs/uploads/upload-1?_state=abc`, { method: 'PATCH', body: payload, chunked })
      expect([r.headers['x-body-sha'], Number(r.headers['x-body-len'])]).toEqual([sha(payload), size])
    }
    expect([up.seen.at(-1)?.path, proxy.log.at(-1).query]).toEqual(['/v2/owner/app/blobs/uploads/upload-1', '?_state=abc'])
    expect(sha((await request(`${P}/v2/owner/app/blobs/sha256:big`)).body)).toBe(sha(up.big))
    expect(Number((await request(`${P}/v2/owner/app/blobs/sha256:big`, { method: 'HEAD' })).headers['content-length'])).toBe(up.big.length)
    const put = await request(M('v1'), { method: 'PUT', body: '{"schemaVersion":2}' })
    expect([put.status, put.headers.location?.startsWith(`${P}/v2/owner/app/manifests/sha256:`)]).toEqual([201, true])
    expect(proxy.log.at(-1)).toMatchObject({ t: expect.any(Number), method: 'PUT', path: '/v2/owner/app/manifests/v1', fate: 'forwarded', status: 201 })
  })

  it('hide from now: the tag answers 404 MANIFEST_UNKNOWN to GET and HEAD for N seconds, other repositories are untouched', async () => {
    proxy.configure({ hide: [{ repo: 'owner/app', tag: 'v1', seconds: 1, from: 'now' }] })
    const hidden = await request(M('v1'))
    expect([hidden.status, fate()]).toEqual([404, 'hidden'])
    expect(JSON.parse(hidden.text).errors[0]).toMatchObject({ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' })
    expect((await request(M('v1'), { method: 'HEAD' })).status).toBe(404)
    await request(`${P}/v2/owner/other/manifests/v1`)
    expect(fate()).toBe('forwarded')
    await sleep(1100)
    expect((await request(M('v1'))).text).toBe('{"schemaVersion":2}')
  })

  it('hide from push: the tag hides for N seconds after each push that went through (once with rearm: false); other tags are untouched', async () => {
    proxy.configure({ hide: [{ tag: 'v2', seconds: 1, from: 'push' }] })
    await request(M('v2'))
    expect(fate()).toBe('forwarded')
    await request(M('v2'), { method: 'PUT', body: '{"v":2}' })
    expect(fate()).toBe('forwarded')
    expect([(await request(M('v2'))).status, fate(), (await request(M('v1'))).status]).toEqual([404, 'hidden', 200])
    await sleep(1100)
    expect((await request(M('v2'))).status).toBe(200)
    await request(M('v2'), { method: 'PUT', body: '{"v":2}' })
    expect((await request(M('v2'))).status).toBe(404)
    proxy.configure({ hide: [{ tag: 'v2', seconds: 0.5, from: 'push', rearm: false }] })
    await request(M('v2'), { method: 'PUT', body: '{"v":2}' })
    await sleep(600)
    await request(M('v2'), { method: 'PUT', body: '{"v":2}' })
    expect((await request(M('v2'))).status).toBe(200)
  })

  it('errorRate: about that share of /v2/ requests fail, with registry errors of the given statuses, Retry-After on 429/503, never forwarded, the same for the same seed', async () => {
    const run = async (n: number) => {
      proxy.configure({ errorRate: 0.3, retryAfter: 2 })
      proxy.clearLog()
      const seen = up.seen.length
      const answers: Answer[] = []
      for (let i = 0; i < n; i++) answers.push(await request(`${P}/v2/`))
      return { answers, fates: proxy.log.map((e: any) => `${e.fate}:${e.status}`).join(), forwarded: up.seen.length - seen }
    }
    const a = await run(300)
    const errors = a.answers.filter((r) => r.status !== 200)
    expect(errors.length / 300).toBeGreaterThan(0.22)
    expect(errors.length / 300).toBeLessThan(0.38)
    expect(a.forwarded).toBe(300 - errors.length)
    expect([...new Set(errors.map((r) => r.status))].sort()).toEqual([429, 500, 502, 503])
    expect(errors.every((r) => (r.headers['retry-after'] === '2') === (r.status === 429 || r.status === 503))).toBe(true)
    expect(errors.every((r) => Array.isArray(JSON.parse(r.text).errors))).toBe(true)
    expect((await run(300)).fates).toBe(a.fates)
    proxy.configure({ errorRate: 0.3, seed: 99 })
    proxy.clearLog()
    for (let i = 0; i < 60; i++) await request(`${P}/v2/`)
    expect(proxy.log.map((e: any) => `${e.fate}:${e.status}`).join()).not.toBe(a.fates.split(',').slice(0, 60).join())
    proxy.configure({ errorRate: 1, statuses: [503], retryAfter: 5 })
    const seen = up.seen.length
    const faulted = await request(`${P}/v2/owner/app/blobs/uploads/upload-1?_state=abc`, { method: 'PATCH', body: crypto.randomBytes(2 * 1024 * 1024) })
    expect([faulted.status, faulted.headers['retry-after'], up.seen.length - seen]).toEqual([503, '5', 0])
    expect([(await request(`${P}/healthz`)).status, fate()]).toEqual([404, 'forwarded'])
  })

  it('outageSeconds: every /v2/ request answers 503 + Retry-After for that long', async () => {
    proxy.configure({ outageSeconds: 1 })
    const first = await request(`${P}/v2/`)
    expect([first.status, first.headers['retry-after'], fate(), (await request(M('v1'))).status]).toEqual([503, '1', 'outage', 503])
    await sleep(1100)
    expect((await request(`${P}/v2/`)).status).toBe(200)
  })

  it('forced statuses by path (string or RegExp), method and count; a 401 comes with WWW-Authenticate and UNAUTHORIZED', async () => {
    proxy.configure({ status: [{ pathRegex: '.*', status: 401 }] })
    const denied = await request(`${P}/v2/`)
    expect([denied.status, /realm/.test(denied.headers['www-authenticate'] ?? ''), JSON.parse(denied.text).errors[0].code, fate()]).toEqual([
      401,
      true,
      'UNAUTHORIZED',
      'forced'
    ])
    expect((await request(M('v1'))).status).toBe(401)
    proxy.configure({ status: [{ pathRegex: '/blobs/', status: 403, count: 2 }] })
    const blob = () => request(`${P}/v2/owner/app/blobs/sha256:big`, { method: 'HEAD' })
    expect([(await blob()).status, (await blob()).status, (await blob()).status, (await request(M('v1'))).status]).toEqual([403, 403, 200, 200])
    proxy.configure({ status: [{ pathRegex: /manifests/, status: 500, methods: ['PUT'] }] })
    expect([(await request(M('v3'), { method: 'PUT', body: '{}' })).status, (await request(M('v1'))).status]).toEqual([500, 200])
  })

  it('resetRate: the socket is reset without an answer, about that share of the time, each one logged', async () => {
    proxy.configure({ resetRate: 1 })
    const err = await request(`${P}/v2/`).catch((e) => e)
    expect(String(err?.code ?? err?.message)).toMatch(/socket hang up|ECONNRESET/)
    expect(proxy.log.at(-1)).toMatchObject({ fate: 'reset', status: null })
    proxy.configure({ resetRate: 0.5, seed: 3 })
    proxy.clearLog()
    let resets = 0
    for (let i = 0; i < 100; i++) await request(`${P}/v2/`).catch(() => resets++)
    expect(resets).toBeGreaterThan(35)
    expect(resets).toBeLessThan(65)
    expect(proxy.log.filter((e: any) => e.fate === 'reset').length).toBe(resets)
  })
})
