import { parseChallenge, registryBaseUrl, RegistryClient, repositoryOf } from '../../src/registry/client.js'
import { ClassifiedError, parseRegistryErrors, RegistryError } from '../../src/model/errors.js'
import { startFakeRegistry } from '../support/fake-registry.mjs'

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
  // the in-process fake registry (real HTTP on loopback); scripted answers through its intercept hook
  let fake: Awaited<ReturnType<typeof startFakeRegistry>> | undefined
  afterEach(async () => {
    await fake?.close()
    fake = undefined
  })

  it('answers a Basic challenge with the credentials and digests the body', async () => {
    fake = await startFakeRegistry({ auth: 'basic', ...creds })
    fake.putManifest('team/agent', 's-amd64', index)
    fake.putManifest('team/agent', 's-arm64', index)
    const { host, seen } = fake
    const client = new RegistryClient(`${host}/team/agent`, host, creds)
    const [a, b] = await Promise.all([client.manifest('s-amd64'), client.manifest('s-arm64')])
    expect(a.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(b.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(seen.map((r) => r.url)).toContain('/v2/team/agent/manifests/s-arm64')
  })

  it('fetches a Bearer token from the realm for the repository scope', async () => {
    fake = await startFakeRegistry({ auth: 'bearer', service: 'reg', ...creds })
    fake.putManifest('team/agent', 's', index)
    const { host, seen } = fake
    await new RegistryClient(`${host}/team/agent`, host, creds).manifest('s')
    const token = seen.find((r) => r.url.startsWith('/token'))!
    expect(token.authorization).toBe(basic)
    expect(token.url).toBe('/token?service=reg&scope=repository%3Ateam%2Fagent%3Apull')
  })

  it("names the registry's error code and message, not only the status", async () => {
    fake = await startFakeRegistry()
    fake.intercept((req, res) => {
      if (req.method !== 'PUT') return false
      const body = { errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid', detail: { reason: 'unknown media type' } }] }
      res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify(body))
      return true
    })
    const { host } = fake
    const error = await failure(
      new RegistryClient(`${host}/team/agent`, host, creds, 'push').putManifest('s', 'application/vnd.oci.image.index.v1+json', Buffer.from(index))
    )
    expect(error).toBeInstanceOf(RegistryError)
    expect(error).toMatchObject({ status: 400, code: 'MANIFEST_INVALID', outcome: 'fatal' })
    expect(error.message).toBe(`${host}/team/agent:s: HTTP 400 MANIFEST_INVALID: manifest invalid`)
  })

  it('reads the error body of the distribution spec and nothing else', () => {
    expect(parseRegistryErrors('{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"},{"code":"X"}]}')).toEqual([
      { code: 'DENIED', message: 'requested access to the resource is denied' },
      { code: 'X', message: '' }
    ])
    for (const body of ['', '<html>502</html>', '{"message":"x"}', '{"errors":"x"}', '{"errors":[{"message":"no code"}]}'])
      expect(parseRegistryErrors(body)).toEqual([])
    expect(new RegistryError('r/a:t', 404, [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }]).message).toBe(
      'r/a:t: not found (MANIFEST_UNKNOWN: manifest unknown)'
    )
    expect(new RegistryError('r/a:t', 401, [{ code: 'UNAUTHORIZED', message: 'authentication required' }]).message).toBe(
      'r/a:t: access denied (HTTP 401, UNAUTHORIZED: authentication required)'
    )
    expect(new RegistryError('r/a:t', 503).message).toBe('r/a:t: HTTP 503')
    expect(new RegistryError('r/a:t', 500, [{ code: 'UNKNOWN', message: 'x'.repeat(400) }]).message.length).toBeLessThan(330)
  })

  it('classifies not found, denied and throttled answers', async () => {
    fake = await startFakeRegistry()
    fake.deny(403, /\/denied$/)
    fake.intercept((req, res) => {
      if (!req.url!.endsWith('/busy')) return false
      res.writeHead(429, { 'Retry-After': '2' }).end()
      return true
    })
    const { host } = fake
    const client = new RegistryClient(`${host}/a`, host, creds)
    expect(await failure(client.manifest('missing'))).toMatchObject({ outcome: 'absent' })
    expect(await failure(client.manifest('denied'))).toMatchObject({ outcome: 'auth' })
    expect(await failure(client.manifest('busy'))).toMatchObject({ outcome: 'transient', retryAfterMs: 2000 })
  })

  it('gives up at once when the credentials are refused', async () => {
    fake = await startFakeRegistry({ auth: 'basic', username: 'u', password: 'not-p' })
    const { host, seen } = fake
    expect(await failure(new RegistryClient(`${host}/a`, host, creds).manifest('t'))).toMatchObject({ outcome: 'auth' })
    expect(seen).toHaveLength(2)
  })

  it('treats a reset connection as transient', async () => {
    fake = await startFakeRegistry()
    fake.intercept((req) => {
      req.socket.destroy()
      return true
    })
    const { host } = fake
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
