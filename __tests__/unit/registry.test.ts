import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseChallenge, registryBaseUrl, RegistryClient, repositoryOf } from '../../src/registry.js'
import { ClassifiedError } from '../../src/retry.js'

/** A tiny registry on loopback: real HTTP, scripted answers. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; host: string; seen: IncomingMessage[] }> {
  const seen: IncomingMessage[] = []
  const server = createServer((req, res) => {
    seen.push(req)
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] })
const creds = { username: 'u', password: 'p' }
const basic = `Basic ${Buffer.from('u:p').toString('base64')}`

async function failure(promise: Promise<unknown>): Promise<ClassifiedError> {
  try {
    await promise
  } catch (error) {
    return error as ClassifiedError
  }
  throw new Error('expected a failure')
}

describe('registry client', () => {
  let stop: Server | undefined
  afterEach(() => stop?.close())

  it('answers a Basic challenge with the credentials and digests the body', async () => {
    const { server, host, seen } = await serve((req, res) => {
      if (req.headers.authorization !== basic) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="r"' }).end()
        return
      }
      res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.index.v1+json' }).end(index)
    })
    stop = server
    const client = new RegistryClient(`${host}/team/agent`, host, creds)
    const [a, b] = await Promise.all([client.manifest('s-amd64'), client.manifest('s-arm64')])
    expect(a.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(b.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(seen.map((r) => r.url)).toContain('/v2/team/agent/manifests/s-arm64')
  })

  it('fetches a Bearer token from the realm for the repository scope', async () => {
    const { server, host, seen } = await serve((req, res) => {
      if (req.url!.startsWith('/token')) {
        expect(req.headers.authorization).toBe(basic)
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token: 'tok' }))
      } else if (req.headers.authorization !== 'Bearer tok') {
        res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${req.headers.host}/token",service="reg"` }).end()
      } else {
        res.writeHead(200).end(index)
      }
    })
    stop = server
    await new RegistryClient(`${host}/team/agent`, host, creds).manifest('s')
    expect(seen.find((r) => r.url!.startsWith('/token'))!.url).toBe('/token?service=reg&scope=repository%3Ateam%2Fagent%3Apull')
  })

  it('classifies not found, denied and throttled answers', async () => {
    const { server, host } = await serve((req, res) => {
      if (req.url!.endsWith('/missing')) res.writeHead(404).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
      else if (req.url!.endsWith('/denied')) res.writeHead(403).end()
      else res.writeHead(429, { 'Retry-After': '2' }).end()
    })
    stop = server
    const client = new RegistryClient(`${host}/a`, host, creds)
    expect(await failure(client.manifest('missing'))).toMatchObject({ outcome: 'absent' })
    expect(await failure(client.manifest('denied'))).toMatchObject({ outcome: 'auth' })
    expect(await failure(client.manifest('busy'))).toMatchObject({ outcome: 'transient', retryAfterMs: 2000 })
  })

  it('gives up at once when the credentials are refused', async () => {
    const { server, host, seen } = await serve((_req, res) => res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="r"' }).end())
    stop = server
    expect(await failure(new RegistryClient(`${host}/a`, host, creds).manifest('t'))).toMatchObject({ outcome: 'auth' })
    expect(seen).toHaveLength(2)
  })

  it('treats a reset connection as transient', async () => {
    const { server, host } = await serve((req) => req.socket.destroy())
    stop = server
    expect(await failure(new RegistryClient(`${host}/a`, host, creds).manifest('t'))).toMatchObject({ outcome: 'transient' })
  })

  it('maps hosts and repositories like docker does', () => {
    expect(registryBaseUrl('127.0.0.1:5000')).toBe('http://127.0.0.1:5000')
    expect(registryBaseUrl('localhost')).toBe('http://localhost')
    expect(registryBaseUrl('ghcr.io')).toBe('https://ghcr.io')
    expect(registryBaseUrl('docker.io')).toBe('https://registry-1.docker.io')
    expect(repositoryOf('docker.io/busybox', 'docker.io')).toBe('library/busybox')
    expect(repositoryOf('ghcr.io/colliery-io/brokkr-agent', 'ghcr.io')).toBe('colliery-io/brokkr-agent')
    expect(parseChallenge('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:a:pull' }
    })
  })
})
