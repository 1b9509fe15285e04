// The real distribution registry for one test file: bookworm's docker-registry (the binary the
// e2e stack runs), in-memory storage, on a free loopback port, with one of three front doors:
//   auth 'none';
//   auth 'basic': htpasswd with the one user `u`, password `p`;
//   auth 'token': a token realm in this process, as GHCR and Docker Hub run theirs: it grants each
//     user only the actions it may do, so a user without push rights logs in fine and is refused
//     only when it writes (a job without `permissions: packages: write` meeting GHCR).
// Faults (lag, 5xx, resets, forced answers) come from startFaultProxy({ target: registry.url }) in
// front. The registry is a child process, recorded with trackProcess() and stopped by close().

import { execFileSync, spawn } from 'node:child_process'
import { createHash, createPrivateKey, createSign, randomBytes, X509Certificate } from 'node:crypto'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as os from 'node:os'
import * as path from 'node:path'

import { stopProcesses, trackProcess } from './processes.mjs'

const BINARY = '/usr/bin/docker-registry'
export const TOKEN_SERVICE = 'brokkr-token-registry'
const ISSUER = 'brokkr-token-service'
/** `htpasswd -Bbn -C 5 u p` */
const HTPASSWD = 'u:$2y$05$q9uhQQa2zps.t7nLYHX/Nuk5yHyJzfX48IYbJGEdmQrIbKg2v/4nu\n'
const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json'
].join(', ')

/** Listens on a free loopback port; returns the port. */
const listenLoopback = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)))
const b64url = (data) => Buffer.from(data).toString('base64url')
const toBuf = (b) => (Buffer.isBuffer(b) ? b : Buffer.from(typeof b === 'string' ? b : JSON.stringify(b)))
export const digestOf = (b) => `sha256:${createHash('sha256').update(toBuf(b)).digest('hex')}`

/** A token realm signing RS256 JWTs with a throwaway CA the registry trusts. */
async function startTokenRealm(dir, users) {
  const keyFile = path.join(dir, 'token.key')
  const certFile = path.join(dir, 'token.crt')
  const subject = ['-subj', `/CN=${ISSUER}`, '-addext', 'basicConstraints=critical,CA:TRUE']
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', ...subject], {
    stdio: 'ignore'
  })
  const key = createPrivateKey(fs.readFileSync(keyFile))
  const x5c = [new X509Certificate(fs.readFileSync(certFile)).raw.toString('base64')]
  const sign = (user, access) => {
    const now = Math.floor(Date.now() / 1000)
    const claims = { iss: ISSUER, sub: user ?? '', aud: TOKEN_SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access }
    const input = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c }))}.${b64url(JSON.stringify(claims))}`
    return `${input}.${b64url(createSign('RSA-SHA256').update(input).sign(key))}`
  }
  const requests = []
  const json = (res, status, body) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body))
  /** GET with Basic credentials (docker login, the action's client) or the OAuth2 password grant POST (containerd, BuildKit). */
  const answer = (res, url, user, password) => {
    const scopes = url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .map((s) => /^repository:([^:]+):(.+)$/.exec(s))
      .filter(Boolean)
      .map(([, name, actions]) => ({ name, actions: actions.split(',') }))
    const account = user !== null ? users[user] : undefined
    const request = { user, url: url.pathname + url.search, scopes, granted: null }
    requests.push(request)
    if (user !== null && account?.password !== password) return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'wrong user name or password' }] })
    // anonymous callers get nothing; a user gets what it asked for, cut down to what it may do
    request.granted = scopes.map((s) => ({ type: 'repository', name: s.name, actions: s.actions.filter((a) => account?.actions.includes(a)) }))
    const token = sign(user, request.granted)
    json(res, 200, { token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() })
  }
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://token')
    if (req.method === 'POST') {
      let body = ''
      for await (const c of req) body += c
      const form = new URLSearchParams(body)
      if (form.get('grant_type') !== 'password') return json(res, 400, { error: 'unsupported_grant_type' })
      for (const scope of (form.get('scope') ?? '').split(' ').filter(Boolean)) url.searchParams.append('scope', scope)
      return answer(res, url, form.get('username'), form.get('password'))
    }
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')
    const [user, password] = basic ? Buffer.from(basic[1], 'base64').toString('utf8').split(/:(.*)/s) : [null, null]
    answer(res, url, user, password)
  })
  const port = await listenLoopback(server)
  const close = () => new Promise((resolve) => server.close(resolve).closeAllConnections())
  return { url: `http://127.0.0.1:${port}/token`, close, certFile, requests, sign }
}

/**
 * @param {object} [o]
 * @param {'none'|'basic'|'token'} [o.auth='none']
 * @param {Record<string, {password: string, actions: string[]}>} [o.users]  token: what each user may do in every repository
 */
export async function startRegistry({ auth = 'none', users = {} } = {}) {
  if (!fs.existsSync(BINARY)) throw new Error(`${BINARY} is missing: install the docker-registry package (apt-get install docker-registry)`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brokkr-registry-'))
  const realm = auth === 'token' ? await startTokenRealm(dir, users) : null
  const probe = http.createServer()
  const port = await listenLoopback(probe)
  await new Promise((resolve) => probe.close(resolve))
  const config = ['version: 0.1', 'log:', '  level: warn', 'storage:', '  inmemory: {}', 'http:', `  addr: 127.0.0.1:${port}`, '  relativeurls: true']
  config.push(`  secret: ${randomBytes(16).toString('hex')}`)
  if (auth === 'basic') {
    fs.writeFileSync(path.join(dir, 'htpasswd'), HTPASSWD)
    config.push('auth:', '  htpasswd:', '    realm: brokkr-registry', `    path: ${path.join(dir, 'htpasswd')}`)
  } else if (realm) {
    config.push(
      'auth:',
      '  token:',
      `    realm: ${realm.url}`,
      `    service: ${TOKEN_SERVICE}`,
      `    issuer: ${ISSUER}`,
      `    rootcertbundle: ${realm.certFile}`
    )
  }
  fs.writeFileSync(path.join(dir, 'config.yml'), `${config.join('\n')}\n`)
  const child = spawn(BINARY, ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c) => (stderr += c))
  trackProcess(child.pid, `registry 127.0.0.1:${port}`)
  const url = `http://127.0.0.1:${port}`

  const close = async () => {
    await stopProcesses([{ pid: child.pid, label: 'registry' }])
    await realm?.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  for (const deadline = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 50))) {
    const status = await fetch(`${url}/v2/`).then(
      (r) => r.status,
      () => 0
    )
    if (status === 200 || status === 401) break
    if (child.exitCode !== null || Date.now() > deadline) {
      await close()
      throw new Error(`the registry did not start: ${stderr.trim().slice(-500) || 'no output'}`)
    }
  }

  /** Authorization with every right on a repository, for seeding and reading back past any proxy. */
  const admin = (repo) => {
    if (auth === 'basic') return { Authorization: `Basic ${Buffer.from('u:p').toString('base64')}` }
    if (realm) return { Authorization: `Bearer ${realm.sign('admin', [{ type: 'repository', name: repo, actions: ['pull', 'push'] }])}` }
    return {}
  }
  const expect = async (res, status, what) => {
    if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`)
    return res
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    /** token: every request the realm answered ({user, url, scopes, granted}; granted null when refused) */
    tokenRequests: realm?.requests ?? [],
    /** Uploads a blob into repo; returns its digest. */
    async putBlob(repo, bytes) {
      const body = toBuf(bytes)
      const digest = digestOf(body)
      const start = await expect(await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: admin(repo) }), 202, `upload to ${repo}`)
      const location = new URL(start.headers.get('location'), url)
      location.searchParams.set('digest', digest)
      await expect(await fetch(location, { method: 'PUT', headers: admin(repo), body }), 201, `blob ${digest}`)
      return digest
    },
    /** Puts a manifest under a tag or its digest; returns its digest. */
    async putManifest(repo, ref, manifest, mediaType) {
      const body = toBuf(manifest)
      const headers = { ...admin(repo), 'Content-Type': mediaType ?? JSON.parse(body.toString()).mediaType }
      await expect(await fetch(`${url}/v2/${repo}/manifests/${ref}`, { method: 'PUT', headers, body }), 201, `manifest ${repo}:${ref}`)
      return digestOf(body)
    },
    /** Reads a manifest back: {digest, mediaType, body}, or undefined when the registry has none. */
    async manifest(repo, ref) {
      const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, { headers: { ...admin(repo), Accept: ACCEPT } })
      if (res.status === 404) return undefined
      const body = Buffer.from(await (await expect(res, 200, `manifest ${repo}:${ref}`)).arrayBuffer())
      return { digest: res.headers.get('docker-content-digest'), mediaType: res.headers.get('content-type'), body }
    },
    close
  }
}
