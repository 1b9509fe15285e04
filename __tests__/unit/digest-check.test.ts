import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { RegistryClient } from '../../src/registry/client.js'
import { ClassifiedError, DigestMismatchError } from '../../src/model/errors.js'
import { RetryPolicy } from '../../src/registry/retry.js'

const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`
const manifestBody = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: {}, layers: [] })
const configBody = JSON.stringify({ os: 'linux', architecture: 'arm64' })
const tampered = JSON.stringify({ os: 'linux', architecture: 'amd64' })

/** A loopback registry that answers every digest with `body(digest)` and counts requests. */
async function serve(body: (path: string) => string): Promise<{ server: Server; host: string; requests: () => number }> {
  let count = 0
  const server = createServer((req, res) => {
    count++
    res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }).end(body(req.url!))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => count }
}

describe('registry client digest check', () => {
  let stop: Server | undefined
  afterEach(() => stop?.close())

  it('accepts a manifest and a blob whose bytes hash to the digest asked for', async () => {
    const { server, host } = await serve((path) => (path.includes('/blobs/') ? configBody : manifestBody))
    stop = server
    const client = new RegistryClient(`${host}/team/agent`, host, undefined)
    expect((await client.manifest(sha(manifestBody))).digest).toBe(sha(manifestBody))
    expect(await client.blobJson(sha(configBody))).toEqual({ os: 'linux', architecture: 'arm64' })
  })

  it('does not check a manifest fetched by tag: a tag may move', async () => {
    const { server, host } = await serve(() => manifestBody)
    stop = server
    expect((await new RegistryClient(`${host}/a`, host, undefined).manifest('abc1234-amd64')).digest).toBe(sha(manifestBody))
  })

  it('fails with a typed, fatal error naming the reference when a manifest does not match its digest', async () => {
    const { server, host } = await serve(() => manifestBody)
    stop = server
    const asked = sha('something else')
    const error = await new RegistryClient(`${host}/team/agent`, host, undefined).manifest(asked).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(DigestMismatchError)
    expect(error).toBeInstanceOf(ClassifiedError)
    expect(error).toMatchObject({ outcome: 'fatal', reference: `${host}/team/agent@${asked}`, expected: asked, actual: sha(manifestBody) })
    expect((error as Error).message).toContain(`${host}/team/agent@${asked}`)
  })

  it('fails the same way for a blob, and is never retried', async () => {
    const { server, host, requests } = await serve(() => tampered)
    stop = server
    const client = new RegistryClient(`${host}/team/agent`, host, undefined)
    const retry = new RetryPolicy({ retries: 5, backoff: { baseMs: 1, capMs: 1 }, info: () => {}, sleep: async () => {} })
    const error = await retry.run(() => client.blobJson(sha(configBody)), { retryOn: ['transient', 'absent'] }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(DigestMismatchError)
    expect((error as Error).message).toBe(
      `${host}/team/agent@${sha(configBody)}: the registry sent content whose digest is ${sha(tampered)}, not ${sha(configBody)}`
    )
    expect(requests()).toBe(1)
  })
})
