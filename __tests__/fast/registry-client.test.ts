/**
 * The registry client against the real distribution registry: one with htpasswd (Basic) auth
 * behind the fault proxy, one with token (Bearer) auth.
 */
import * as http from 'node:http'
import { RegistryClient } from '../../src/registry/client.js'
import { ClassifiedError, DigestMismatchError, RegistryError } from '../../src/model/errors.js'
import { RetryPolicy } from '../../src/registry/retry.js'
import { startRegistry, TOKEN_SERVICE } from '../support/registry.mjs'
import { startFaultProxy } from '../e2e/support/fault-proxy.mjs'

const INDEX = 'application/vnd.oci.image.index.v1+json'
const index = JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [] })
const creds = { username: 'u', password: 'p' }

async function failure(promise: Promise<unknown>): Promise<ClassifiedError> {
  try {
    await promise
  } catch (error) {
    return error as ClassifiedError
  }
  throw new Error('expected a failure')
}

let basic: Awaited<ReturnType<typeof startRegistry>>
let token: Awaited<ReturnType<typeof startRegistry>>
let proxy: Awaited<ReturnType<typeof startFaultProxy>>
beforeAll(async () => {
  ;[basic, token] = await Promise.all([
    startRegistry({ auth: 'basic' }),
    startRegistry({ auth: 'token', users: { u: { password: 'p', actions: ['pull', 'push'] } } })
  ])
  proxy = await startFaultProxy({ target: basic.url })
})
afterAll(async () => {
  await proxy?.close()
  await Promise.all([basic?.close(), token?.close()])
})
afterEach(() => {
  proxy.configure({})
  proxy.clearLog()
})

describe('registry client against the registry', () => {
  it('answers a Basic challenge with the credentials and digests the body', async () => {
    const amd64 = await basic.putManifest('team/agent', 's-amd64', index)
    await basic.putManifest('team/agent', 's-arm64', index)
    const client = new RegistryClient(`${proxy.host}/team/agent`, proxy.host, creds)
    const [a, b] = await Promise.all([client.manifest('s-amd64'), client.manifest('s-arm64')])
    expect(a.digest).toBe(amd64)
    expect(b.mediaType).toBe(INDEX)
    expect(proxy.log.filter((e: any) => e.path === '/v2/team/agent/manifests/s-arm64').map((e: any) => e.status)).toContain(200)
  })

  it('fetches a Bearer token from the realm for the repository scope', async () => {
    await token.putManifest('team/agent', 's', index)
    await new RegistryClient(`${token.host}/team/agent`, token.host, creds).manifest('s')
    expect(token.tokenRequests).toEqual([expect.objectContaining({ user: 'u', url: `/token?service=${TOKEN_SERVICE}&scope=repository%3Ateam%2Fagent%3Apull` })])
  })

  it("names the registry's error code and message, not only the status", async () => {
    // an index sent as an image manifest: the registry refuses it as invalid
    const client = new RegistryClient(`${token.host}/team/agent`, token.host, creds, 'push')
    const error = await failure(client.putManifest('s', 'application/vnd.oci.image.manifest.v1+json', Buffer.from(index)))
    expect(error).toBeInstanceOf(RegistryError)
    expect(error).toMatchObject({ status: 400, code: 'MANIFEST_INVALID', outcome: 'fatal' })
    expect(error.message).toBe(`${token.host}/team/agent:s: HTTP 400 MANIFEST_INVALID: manifest invalid`)
  })

  it('classifies not found, denied and throttled answers', async () => {
    proxy.configure({
      status: [
        { pathRegex: '/denied$', status: 403 },
        { pathRegex: '/busy$', status: 429, retryAfter: 2 }
      ]
    })
    const client = new RegistryClient(`${proxy.host}/a`, proxy.host, creds)
    expect(await failure(client.manifest('missing'))).toMatchObject({ outcome: 'absent' })
    expect(await failure(client.manifest('denied'))).toMatchObject({ outcome: 'auth' })
    expect(await failure(client.manifest('busy'))).toMatchObject({ outcome: 'transient', retryAfterMs: 2000 })
  })

  it('gives up at once when the credentials are refused', async () => {
    const client = new RegistryClient(`${proxy.host}/a`, proxy.host, { username: 'u', password: 'not-p' })
    expect(await failure(client.manifest('t'))).toMatchObject({ outcome: 'auth' })
    expect(proxy.log.map((e: any) => e.status)).toEqual([401, 401])
  })

  it('treats a reset connection as transient', async () => {
    proxy.configure({ resetRate: 1 })
    expect(await failure(new RegistryClient(`${proxy.host}/a`, proxy.host, creds).manifest('t'))).toMatchObject({ outcome: 'transient' })
  })

  it('checks what it fetches by digest, with a typed fatal error that is never retried; a tag may move', async () => {
    const config = JSON.stringify({ os: 'linux', architecture: 'arm64' })
    const asked = `sha256:${'c'.repeat(64)}`
    proxy.configure({
      status: [{ pathRegex: '/(blobs|manifests)/', methods: ['GET'], status: 200, body: JSON.parse(config), headers: { 'Content-Type': INDEX } }]
    })
    const retry = new RetryPolicy({ retries: 5, backoff: { baseMs: 1, capMs: 1 }, info: () => {}, sleep: async () => {} })
    const client = new RegistryClient(`${proxy.host}/team/agent`, proxy.host, creds, 'pull', retry)
    const error = await failure(client.blobJson(asked))
    expect(error).toBeInstanceOf(DigestMismatchError)
    expect(error).toMatchObject({ outcome: 'fatal', reference: `${proxy.host}/team/agent@${asked}`, expected: asked })
    expect(error.message).toMatch(new RegExp(`@${asked}: the registry sent content whose digest is sha256:[0-9a-f]{64}, not ${asked}`))
    expect(proxy.log.filter((e: any) => e.path.includes('/blobs/')).length).toBe(1)
    expect((await client.manifest('abc1234-amd64')).json).toEqual(JSON.parse(config))
  })

  it('refuses a blob over the size asked for, fatal and never retried, and reads one under it', async () => {
    const statement = Buffer.from(JSON.stringify({ predicateType: 'x', subject: [], padding: 'p'.repeat(2000) }))
    const digest = await basic.putBlob('team/agent', statement)
    const retry = new RetryPolicy({ retries: 5, backoff: { baseMs: 1, capMs: 1 }, info: () => {}, sleep: async () => {} })
    const client = new RegistryClient(`${proxy.host}/team/agent`, proxy.host, creds, 'pull', retry)
    const error = await failure(client.blobJson(digest, 1000))
    expect(error).toMatchObject({ outcome: 'fatal', message: `${proxy.host}/team/agent@${digest}: the blob is larger than 1000 bytes; refusing to read it` })
    // one read (after the Basic challenge), not six
    expect(proxy.log.filter((e: any) => e.path.endsWith(`/blobs/${digest}`)).map((e: any) => e.status)).toEqual([401, 200])
    expect((await client.blobJson(digest, statement.length)).predicateType).toBe('x')
  })

  it('stops reading a streamed blob (no Content-Length) once it passes the size asked for', async () => {
    // a front that streams: chunked, without a length to refuse up front
    let sent = 0
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' })
      const timer = setInterval(() => {
        sent += 1024
        if (sent > 1024 * 1024) {
          clearInterval(timer)
          res.end()
        } else res.write(Buffer.alloc(1024, 0x20))
      }, 1)
      res.on('close', () => clearInterval(timer))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const host = `127.0.0.1:${(server.address() as { port: number }).port}`
      const error = await failure(new RegistryClient(`${host}/team/agent`, host, undefined).blobJson(`sha256:${'d'.repeat(64)}`, 10_000))
      expect(error).toMatchObject({ outcome: 'fatal', message: expect.stringMatching(/the blob is larger than 10000 bytes/) })
      expect(sent).toBeLessThan(1024 * 1024)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
