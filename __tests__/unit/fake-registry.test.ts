import { createHash } from 'node:crypto'
import { startFaultProxy } from '../e2e/support/fault-proxy.mjs'
import { startFakeRegistry } from '../support/fake-registry.mjs'

const digestOf = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const INDEX = 'application/vnd.oci.image.index.v1+json'
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`

type Fake = Awaited<ReturnType<typeof startFakeRegistry>>

/** Pushes a config and a layer (monolithic and chunked), an image manifest and an index, with plain fetch. */
async function pushImage(url: string, repo: string, headers: Record<string, string> = {}) {
  const config = Buffer.from('{"architecture":"arm64","os":"linux"}')
  const layer = Buffer.from('layer bytes '.repeat(1000))
  const mono = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digestOf(config)}`, { method: 'POST', headers, body: config })
  expect(mono.status).toBe(201)
  expect(mono.headers.get('docker-content-digest')).toBe(digestOf(config))
  const start = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers })
  expect(start.status).toBe(202)
  let location = new URL(start.headers.get('location')!, url).toString()
  for (const [from, to] of [
    [0, 5000],
    [5000, layer.length]
  ]) {
    const patch = await fetch(location, {
      method: 'PATCH',
      headers: { ...headers, 'Content-Range': `${from}-${to - 1}` },
      body: layer.subarray(from, to)
    })
    expect(patch.status).toBe(202)
    expect(patch.headers.get('range')).toBe(`0-${to - 1}`)
    location = new URL(patch.headers.get('location')!, url).toString()
  }
  const put = await fetch(`${location}?digest=${digestOf(layer)}`, { method: 'PUT', headers })
  expect(put.status).toBe(201)
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }]
  })
  const mput = await fetch(`${url}/v2/${repo}/manifests/s-arm64`, { method: 'PUT', headers: { ...headers, 'Content-Type': MANIFEST }, body: manifest })
  expect(mput.status).toBe(201)
  expect(mput.headers.get('docker-content-digest')).toBe(digestOf(manifest))
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: INDEX,
    manifests: [{ mediaType: MANIFEST, digest: digestOf(manifest), size: manifest.length, platform: { os: 'linux', architecture: 'arm64' } }]
  })
  const iput = await fetch(`${url}/v2/${repo}/manifests/s`, { method: 'PUT', headers: { ...headers, 'Content-Type': INDEX }, body: index })
  expect(iput.status).toBe(201)
  return { config, layer, manifest, index }
}

describe('fake registry', () => {
  let fake: Fake | undefined
  afterEach(async () => {
    await fake?.close()
    fake = undefined
  })

  it('stores blobs, a manifest and an index and reads them back by tag and digest', async () => {
    fake = await startFakeRegistry()
    const { url } = fake
    expect((await fetch(`${url}/v2/`)).status).toBe(200)
    const { layer, manifest, index } = await pushImage(url, 'team/agent')
    const blob = await fetch(`${url}/v2/team/agent/blobs/${digestOf(layer)}`)
    expect(Buffer.from(await blob.arrayBuffer()).equals(layer)).toBe(true)
    const head = await fetch(`${url}/v2/team/agent/blobs/${digestOf(layer)}`, { method: 'HEAD' })
    expect(head.headers.get('content-length')).toBe(String(layer.length))
    const byTag = await fetch(`${url}/v2/team/agent/manifests/s`, { headers: { Accept: `${INDEX}, ${MANIFEST}` } })
    expect(byTag.headers.get('content-type')).toBe(INDEX)
    expect(byTag.headers.get('docker-content-digest')).toBe(digestOf(index))
    expect(await byTag.text()).toBe(index)
    const byDigest = await fetch(`${url}/v2/team/agent/manifests/${digestOf(manifest)}`, { method: 'HEAD' })
    expect(byDigest.status).toBe(200)
    expect(byDigest.headers.get('docker-content-digest')).toBe(digestOf(manifest))
    // content negotiation: an index is not served to a client that accepts only image manifests
    expect((await fetch(`${url}/v2/team/agent/manifests/s`, { headers: { Accept: MANIFEST } })).status).toBe(404)
    // errors are distribution-style bodies
    const missing = await fetch(`${url}/v2/team/agent/manifests/nope`)
    expect(missing.status).toBe(404)
    expect((await missing.json()).errors[0].code).toBe('MANIFEST_UNKNOWN')
    const noBlob = await fetch(`${url}/v2/team/other/blobs/${digestOf(layer)}`)
    expect((await noBlob.json()).errors[0].code).toBe('BLOB_UNKNOWN')
    // a cross-repository mount links the blob without an upload
    const mount = await fetch(`${url}/v2/team/other/blobs/uploads/?mount=${digestOf(layer)}&from=team/agent`, { method: 'POST' })
    expect(mount.status).toBe(201)
    expect((await fetch(`${url}/v2/team/other/blobs/${digestOf(layer)}`, { method: 'HEAD' })).status).toBe(200)
    // a wrong digest is refused
    const bad = await fetch(`${url}/v2/team/agent/blobs/uploads/?digest=${digestOf('x')}`, { method: 'POST', body: 'y' })
    expect((await bad.json()).errors[0].code).toBe('DIGEST_INVALID')
  })

  it('hides a tag for the configured lag after each push', async () => {
    fake = await startFakeRegistry()
    fake.lag('team/agent:s', 0.4)
    const { index } = await pushImage(fake.url, 'team/agent')
    expect((await fetch(`${fake.url}/v2/team/agent/manifests/s`)).status).toBe(404)
    expect((await fetch(`${fake.url}/v2/team/agent/manifests/${digestOf(index)}`)).status).toBe(200)
    expect((await fetch(`${fake.url}/v2/team/agent/manifests/s-arm64`)).status).toBe(200)
    await new Promise((r) => setTimeout(r, 500))
    expect((await fetch(`${fake.url}/v2/team/agent/manifests/s`)).status).toBe(200)
  })

  it('serves wrong bytes for a digest when asked, under the same digest header', async () => {
    fake = await startFakeRegistry()
    const { layer, index } = await pushImage(fake.url, 'a')
    fake.serveWrongBytes(digestOf(layer))
    fake.serveWrongBytes(digestOf(index), 'tampered')
    const blob = await fetch(`${fake.url}/v2/a/blobs/${digestOf(layer)}`)
    expect(blob.headers.get('docker-content-digest')).toBe(digestOf(layer))
    expect(digestOf(Buffer.from(await blob.arrayBuffer()))).not.toBe(digestOf(layer))
    const m = await fetch(`${fake.url}/v2/a/manifests/s`)
    expect(m.headers.get('docker-content-digest')).toBe(digestOf(index))
    expect(await m.text()).toBe('tampered')
    fake.serveWrongBytes(digestOf(index), null)
    expect(await (await fetch(`${fake.url}/v2/a/manifests/s`)).text()).toBe(index)
  })

  it('asks for Basic credentials, and forces 401/403 when told', async () => {
    fake = await startFakeRegistry({ auth: 'basic', username: 'u', password: 'p' })
    const anon = await fetch(`${fake.url}/v2/`)
    expect(anon.status).toBe(401)
    expect(anon.headers.get('www-authenticate')).toMatch(/^Basic /)
    expect((await fetch(`${fake.url}/v2/`, { headers: { Authorization: basic('u', 'x') } })).status).toBe(401)
    expect((await fetch(`${fake.url}/v2/`, { headers: { Authorization: basic('u', 'p') } })).status).toBe(200)
    fake.deny(403, /\/manifests\//)
    const denied = await fetch(`${fake.url}/v2/a/manifests/t`, { headers: { Authorization: basic('u', 'p') } })
    expect(denied.status).toBe(403)
    expect((await denied.json()).errors[0].code).toBe('DENIED')
    expect((await fetch(`${fake.url}/v2/`, { headers: { Authorization: basic('u', 'p') } })).status).toBe(200)
    fake.deny(null)
    expect((await fetch(`${fake.url}/v2/a/manifests/t`, { headers: { Authorization: basic('u', 'p') } })).status).toBe(404)
  })

  it('hands out Bearer tokens scoped to pull or push', async () => {
    fake = await startFakeRegistry({ auth: 'bearer', username: 'u', password: 'p', service: 'reg' })
    const challenge = await fetch(`${fake.url}/v2/team/agent/manifests/s`)
    expect(challenge.status).toBe(401)
    expect(challenge.headers.get('www-authenticate')).toBe(`Bearer realm="${fake.url}/token",service="reg",scope="repository:team/agent:pull"`)
    const token = async (scope: string, creds = basic('u', 'p')) => {
      const r = await fetch(`${fake!.url}/token?service=reg&scope=${encodeURIComponent(scope)}`, { headers: { Authorization: creds } })
      return r.status === 200 ? ((await r.json()).token as string) : r.status
    }
    expect(await token('repository:team/agent:pull', basic('u', 'x'))).toBe(401)
    const pull = await token('repository:team/agent:pull')
    const push = await token('repository:team/agent:pull,push')
    const refused = await fetch(`${fake.url}/v2/team/agent/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${pull}` } })
    expect(refused.status).toBe(401)
    expect(refused.headers.get('www-authenticate')).toContain('scope="repository:team/agent:pull,push"')
    await pushImage(fake.url, 'team/agent', { Authorization: `Bearer ${push}` })
    expect((await fetch(`${fake.url}/v2/team/agent/manifests/s`, { headers: { Authorization: `Bearer ${pull}` } })).status).toBe(200)
    expect((await fetch(`${fake.url}/v2/team/other/manifests/s`, { headers: { Authorization: `Bearer ${pull}` } })).status).toBe(401)
  })

  it('works behind the fault proxy', async () => {
    fake = await startFakeRegistry()
    const proxy = await startFaultProxy({ target: fake.url })
    try {
      const { index } = await pushImage(proxy.url, 'a')
      const m = await fetch(`${proxy.url}/v2/a/manifests/s`)
      expect(m.headers.get('docker-content-digest')).toBe(digestOf(index))
      expect(proxy.log.filter((e: any) => e.fate === 'forwarded').length).toBeGreaterThan(5)
    } finally {
      await proxy.close()
    }
  })
})
