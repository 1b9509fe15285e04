// A registry with token authentication, as GHCR and Docker Hub run theirs: the real
// distribution registry (bookworm's docker-registry) trusts a token service, and the token
// service grants each user only the actions it is allowed. A user without push rights logs in
// fine and is refused only when it tries to write, which is how a job without
// `permissions: packages: write` meets GHCR.
//
// The token service runs in this process; the registry is a child process recorded with
// trackProcess() (global teardown kills it if a test forgets stop()).

import { execFileSync, spawn } from 'node:child_process'
import { createPrivateKey, createSign, randomBytes, X509Certificate } from 'node:crypto'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as os from 'node:os'
import * as path from 'node:path'

import { trackProcess, untrackProcess } from './stack.mjs'

const SERVICE = 'brokkr-token-registry'
const ISSUER = 'brokkr-token-service'

const b64url = (data) => Buffer.from(data).toString('base64url')

/** A free TCP port on 127.0.0.1 (closed again before returning). */
async function freePort() {
  const server = http.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Parses `repository:<name>:<actions>` scopes of a token request. */
function requestedScopes(url) {
  return url.searchParams
    .getAll('scope')
    .flatMap((s) => s.split(' '))
    .map((s) => /^repository:([^:]+):(.+)$/.exec(s))
    .filter(Boolean)
    .map(([, name, actions]) => ({ name, actions: actions.split(',') }))
}

/**
 * @param {object} o
 * @param {Record<string, {password: string, actions: string[]}>} o.users  what each user may do in every repository
 * @returns {Promise<{host: string, tokenRequests: Array<{user: string|null, scopes: any[], granted: any[]}>, stop: () => Promise<void>}>}
 */
export async function startTokenRegistry({ users }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brokkr-token-registry-'))
  const keyFile = path.join(dir, 'token.key')
  const certFile = path.join(dir, 'token.crt')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      `/CN=${ISSUER}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE'
    ],
    { stdio: 'ignore' }
  )
  const key = createPrivateKey(fs.readFileSync(keyFile))
  const certDer = new X509Certificate(fs.readFileSync(certFile)).raw

  const tokenRequests = []
  const sign = (claims) => {
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] }
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
    const signature = createSign('RSA-SHA256').update(input).sign(key)
    return `${input}.${b64url(signature)}`
  }
  /** Answers a token request: GET with Basic credentials (docker login, our client), or the OAuth2 password grant POST (containerd, BuildKit). */
  const answer = (res, url, user, password) => {
    const account = user !== null ? users[user] : undefined
    const scopes = requestedScopes(url)
    if (user !== null && (!account || account.password !== password)) {
      tokenRequests.push({ user, scopes, granted: null })
      res.writeHead(401, { 'Content-Type': 'application/json' })
      return res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'wrong user name or password' }] }))
    }
    // anonymous callers get nothing; a user gets what it asked for, cut down to what it may do
    const granted = scopes.map((s) => ({ type: 'repository', name: s.name, actions: account ? s.actions.filter((a) => account.actions.includes(a)) : [] }))
    tokenRequests.push({ user, scopes, granted })
    const now = Math.floor(Date.now() / 1000)
    const token = sign({
      iss: ISSUER,
      sub: user ?? '',
      aud: SERVICE,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access: granted
    })
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString() }))
  }
  const tokens = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token')
    if (req.method === 'POST') {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        const form = new URLSearchParams(body)
        for (const scope of (form.get('scope') ?? '').split(' ').filter(Boolean)) url.searchParams.append('scope', scope)
        if (form.get('grant_type') !== 'password') {
          res.writeHead(400, { 'Content-Type': 'application/json' })
          return res.end(JSON.stringify({ error: 'unsupported_grant_type' }))
        }
        answer(res, url, form.get('username'), form.get('password'))
      })
      return
    }
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')
    const [user, password] = basic ? Buffer.from(basic[1], 'base64').toString('utf8').split(/:(.*)/s) : [null, null]
    answer(res, url, user, password)
  })
  await new Promise((resolve) => tokens.listen(0, '127.0.0.1', resolve))
  const tokenPort = tokens.address().port

  const port = await freePort()
  const config = [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(dir, 'data')}`,
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    'auth:',
    '  token:',
    `    realm: http://127.0.0.1:${tokenPort}/token`,
    `    service: ${SERVICE}`,
    `    issuer: ${ISSUER}`,
    `    rootcertbundle: ${certFile}`,
    ''
  ].join('\n')
  fs.writeFileSync(path.join(dir, 'config.yml'), config)
  const child = spawn('/usr/bin/docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c) => (stderr += c.toString()))
  trackProcess(child.pid, `token registry 127.0.0.1:${port}`)
  const exited = new Promise((resolve) => child.once('exit', resolve))

  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))])
      if (child.exitCode === null) child.kill('SIGKILL')
    }
    untrackProcess(child.pid)
    await new Promise((resolve) => tokens.close(resolve))
    fs.rmSync(dir, { recursive: true, force: true })
  }

  // ready when it answers the API root with its token challenge
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`)
      await res.arrayBuffer()
      if (res.status === 401 && /Bearer/.test(res.headers.get('www-authenticate') ?? '')) break
    } catch {}
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop()
      throw new Error(`token registry did not start: ${stderr.trim().slice(-500) || 'no output'}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { host: `127.0.0.1:${port}`, tokenRequests, stop }
}
